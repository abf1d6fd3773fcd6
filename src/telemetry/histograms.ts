import { ValueType, type Attributes, type Meter } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { INSTRUMENTATION_SCOPE } from './instruments';

/**
 * Histograms whose series are bound once. The OpenTelemetry SDK's `Histogram.record(value,
 * attributes)` hashes the attributes on every call (their keys sorted, then JSON): 1.26 µs
 * and about 1.6 KB of garbage a record, the largest JavaScript function in a cache miss's
 * profile, which makes seven records. Here a caller asks once for the series of its
 * attributes (`series`) and keeps it under a key of its own; recording is then a bucket
 * search and a few additions.
 *
 * Where the meter's provider reads through a `HistogramProducer` (the process's telemetry,
 * src/telemetry/sdk.ts), the series are aggregated here and handed to the Prometheus reader
 * at collection time as the SDK's own data (`MetricProducer`, the SDK's way to add metrics
 * to a reader): the same names, descriptions, units, buckets, counts, sums, minimums and
 * maximums, the same cardinality limit and overflow series. With any other meter (tests'
 * in-memory providers, the no-op meter) a series records through the SDK's histogram.
 */
export interface SeriesHistogram {
  /** The series of `attributes`: the same series for equal attributes, whatever their key order. */
  series(attributes: Attributes): HistogramSeries;
}

export interface HistogramSeries {
  /** One measurement; negative, NaN and (for an INT histogram) non-finite values are dropped, as the SDK drops them. */
  record(value: number): void;
}

export interface HistogramOptions {
  description: string;
  unit: string;
  valueType?: ValueType;
  /** Bucket upper bounds, ascending (the SDK's `advice.explicitBucketBoundaries`). */
  boundaries: readonly number[];
}

/** The SDK's default number of series per instrument; past it, measurements go to one overflow series. */
const CARDINALITY_LIMIT = 2000;
const OVERFLOW_ATTRIBUTES: Attributes = { 'otel.metric.overflow': true };

const producers = new WeakMap<Meter, HistogramProducer>();

/** Histograms `createSeriesHistogram` makes for `meter` are aggregated by `producer`. */
export function aggregateHistograms(meter: Meter, producer: HistogramProducer): void {
  producers.set(meter, producer);
}

/** A histogram of `meter` (see `SeriesHistogram`). */
export function createSeriesHistogram(meter: Meter, name: string, options: HistogramOptions): SeriesHistogram {
  const producer = producers.get(meter);
  if (producer) return producer.histogram(name, options);
  const histogram = meter.createHistogram(name, {
    description: options.description,
    unit: options.unit,
    valueType: options.valueType,
    advice: { explicitBucketBoundaries: [...options.boundaries] },
  });
  return { series: (attributes) => ({ record: (value) => histogram.record(value, attributes) }) };
}

/**
 * Series of a histogram kept under a caller's own key (label values it already has, joined):
 * no attributes object and no hashing per measurement. At most `max` keys are kept; past
 * that, a series is looked up by its attributes each time (still correct, only slower).
 */
export class SeriesCache {
  readonly #series = new Map<string, HistogramSeries>();

  constructor(
    private readonly histogram: SeriesHistogram,
    private readonly max = 4096,
  ) {}

  get(key: string): HistogramSeries | undefined {
    return this.#series.get(key);
  }

  bind(key: string, attributes: Attributes): HistogramSeries {
    const series = this.histogram.series(attributes);
    if (this.#series.size < this.max) this.#series.set(key, series);
    return series;
  }
}

/** The SDK's key for a set of attributes (`hashAttributes`): key order does not matter. */
function attributesKey(attributes: Attributes): string {
  const keys = Object.keys(attributes).sort();
  return JSON.stringify(keys.map((key) => [key, attributes[key]]));
}

/** One series: the SDK's histogram accumulation, cumulative from its first measurement. */
class Series implements HistogramSeries {
  readonly counts: number[];
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  constructor(
    private readonly histogram: AggregatedHistogram,
    readonly attributes: Attributes,
    readonly startTime: number,
  ) {
    this.counts = new Array<number>(histogram.boundaries.length + 1).fill(0);
  }

  record(value: number): void {
    if (!(value >= 0)) return;
    if (this.histogram.integer && !Number.isInteger(value)) {
      value = Math.trunc(value);
      if (!Number.isInteger(value)) return;
    }
    this.count += 1;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    // The first bucket whose upper bound is at least the value (the SDK's binarySearchUB).
    const boundaries = this.histogram.boundaries;
    let low = 0;
    let high = boundaries.length - 1;
    let index = boundaries.length;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (boundaries[middle]! < value) low = middle + 1;
      else {
        index = middle;
        high = middle - 1;
      }
    }
    this.counts[index]! += 1;
  }

  point(endTime: number): DataPoint<Histogram> {
    return {
      attributes: this.attributes,
      startTime: millisToHrTime(this.startTime),
      endTime: millisToHrTime(endTime),
      value: {
        buckets: { boundaries: [...this.histogram.boundaries], counts: [...this.counts] },
        count: this.count,
        sum: this.sum,
        min: this.count > 0 ? this.min : undefined,
        max: this.count > 0 ? this.max : undefined,
      },
    };
  }
}

class AggregatedHistogram implements SeriesHistogram {
  readonly #series = new Map<string, Series>();
  readonly boundaries: readonly number[];
  readonly integer: boolean;

  constructor(
    readonly name: string,
    readonly options: HistogramOptions,
  ) {
    this.boundaries = [...options.boundaries];
    this.integer = options.valueType === ValueType.INT;
  }

  series(attributes: Attributes): HistogramSeries {
    const key = attributesKey(attributes);
    let series = this.#series.get(key);
    if (!series) {
      if (this.#series.size >= CARDINALITY_LIMIT - 1) return this.#overflow();
      series = new Series(this, { ...attributes }, Date.now());
      this.#series.set(key, series);
    }
    return series;
  }

  #overflow(): Series {
    const key = attributesKey(OVERFLOW_ATTRIBUTES);
    let series = this.#series.get(key);
    if (!series) {
      series = new Series(this, OVERFLOW_ATTRIBUTES, Date.now());
      this.#series.set(key, series);
    }
    return series;
  }

  data(endTime: number): HistogramMetricData | undefined {
    const points: Array<DataPoint<Histogram>> = [];
    // A series made but never recorded into is not reported (the SDK has none for it).
    for (const series of this.#series.values()) if (series.count > 0) points.push(series.point(endTime));
    if (points.length === 0) return undefined;
    return {
      descriptor: { name: this.name, description: this.options.description, unit: this.options.unit, valueType: this.options.valueType ?? ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: points,
    };
  }
}

/** The histograms of one meter, read by a reader as one more source of metrics (`metricProducers`). */
export class HistogramProducer implements MetricProducer {
  readonly #histograms: AggregatedHistogram[] = [];

  /** `resource`: the meter provider's (a reader keeps its SDK's resource, so it is not read). */
  constructor(private readonly resource: Resource) {}

  histogram(name: string, options: HistogramOptions): SeriesHistogram {
    const histogram = new AggregatedHistogram(name, options);
    this.#histograms.push(histogram);
    return histogram;
  }

  collect(): Promise<CollectionResult> {
    const endTime = Date.now();
    const metrics: HistogramMetricData[] = [];
    for (const histogram of this.#histograms) {
      const data = histogram.data(endTime);
      if (data) metrics.push(data);
    }
    return Promise.resolve({
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: { name: INSTRUMENTATION_SCOPE }, metrics }] },
      errors: [],
    });
  }
}
