import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse as parseGraphQL } from 'graphql';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, type IConfigMap, type ISecret, type IService } from 'kubernetes-models/v1';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config';
import { envSchema } from '../../src/config/schema';
import { loadTypeDefs } from '../../src/graphql/schema';
import { parsePolicies } from '../../src/quotas';

/**
 * deploy/: the Kubernetes manifests are checked against the Kubernetes OpenAPI schemas
 * (kubernetes-models) and against what the service needs of them (probes, drain, secrets,
 * selectors, replicas, configuration); the router configurations against the composed
 * supergraph. Offline and fast: no cluster, no network.
 */

const ROOT = resolve(__dirname, '../..');
const KUBE_DIR = join(ROOT, 'deploy/kubernetes');
const ROUTER_DIR = join(ROOT, 'deploy/router');
/** Not applied by kustomize: real secrets come from the operator's secret store. */
const SECRET_EXAMPLE = 'secret.example.yaml';

// ---------------------------------------------------------------------------------------
// Loading and schema validation

type Validator = (object: unknown) => void;

/**
 * The kinds the manifests may use, by `apiVersion/kind` (also where kubernetes-models
 * declares the model): each is validated against its own schema, and its fields against the
 * model's declared properties (the schemas, like the Kubernetes OpenAPI they come from,
 * accept unknown fields; `kubectl apply` refuses them, so a typo would only show at deploy).
 */
const KINDS: Record<string, Validator> = {
  'apps/v1/Deployment': (object) => new Deployment(object as IDeployment).validate(),
  'v1/Service': (object) => new Service(object as IService).validate(),
  'v1/ConfigMap': (object) => new ConfigMap(object as IConfigMap).validate(),
  'v1/Secret': (object) => new Secret(object as ISecret).validate(),
  'policy/v1/PodDisruptionBudget': (object) => new PodDisruptionBudget(object as IPodDisruptionBudget).validate(),
  'autoscaling/v2/HorizontalPodAutoscaler': (object) => new HorizontalPodAutoscaler(object as IHorizontalPodAutoscaler).validate(),
};

/** A property of a model, read from its type declaration: a nested model's file, if any. */
interface DeclaredProperty {
  shape: 'leaf' | 'object' | 'array' | 'map';
  file?: string;
}

const declarations = new Map<string, Map<string, DeclaredProperty> | undefined>();

/**
 * The properties kubernetes-models declares for the model in `file` (its .d.ts: one
 * `export interface` per model, nested models imported by name); undefined for a type alias
 * (Quantity, IntOrString, Time…), whose values the schema checks.
 */
function declaredProperties(file: string): Map<string, DeclaredProperty> | undefined {
  if (declarations.has(file)) return declarations.get(file);
  const text = readFileSync(file, 'utf8').replace(/\/\*\*[\s\S]*?\*\//g, '');
  const header = /export interface I\w+( extends TypeMeta)? \{/.exec(text);
  if (!header) {
    if (!/export declare type/.test(text)) throw new Error(`${file}: neither a model nor a type alias; has kubernetes-models changed its layout?`);
    declarations.set(file, undefined);
    return undefined;
  }
  const imports = new Map([...text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)].map(([, name, from]) => [name, from]));
  const resolveImport = (name: string): string => {
    const from = imports.get(name);
    if (!from) throw new Error(`${file}: ${name} is not imported`);
    if (from.startsWith('.')) return join(dirname(file), `${from}.d.ts`);
    const [scope, pkg, ...rest] = from.split('/');
    return join(dirname(require.resolve(`${scope}/${pkg}`, { paths: [dirname(file)] })), `${rest.join('/')}.d.ts`);
  };
  // The interface body, split into its top-level properties.
  let depth = 0;
  let current = '';
  const members: string[] = [];
  for (const char of text.slice(header.index + header[0].length)) {
    if (char === '}' && depth === 0) break;
    if ('{<('.includes(char)) depth += 1;
    if ('}>)'.includes(char)) depth -= 1;
    if (char === ';' && depth === 0) {
      members.push(current.trim());
      current = '';
    } else current += char;
  }
  const properties = new Map<string, DeclaredProperty>();
  if (header[1]) for (const name of ['apiVersion', 'kind']) properties.set(name, { shape: 'leaf' });
  for (const member of members) {
    const match = /^"([^"]+)"\??:\s*([\s\S]+)$/.exec(member);
    if (!match) throw new Error(`${file}: cannot read the member ${member}`);
    const type = match[2].replace(/\s+/g, ' ').trim();
    const array = /^Array<(I\w+)>$/.exec(type);
    const map = /^\{ \[key: string\]: (I\w+); \}$/.exec(type);
    const object = /^(I\w+)$/.exec(type);
    if (array) properties.set(match[1], { shape: 'array', file: resolveImport(array[1]) });
    else if (map) properties.set(match[1], { shape: 'map', file: resolveImport(map[1]) });
    else if (object) properties.set(match[1], { shape: 'object', file: resolveImport(object[1]) });
    else properties.set(match[1], { shape: 'leaf' });
  }
  declarations.set(file, properties);
  return properties;
}

/** Fields the model does not declare, at any depth, with their path. */
function unknownFields(value: unknown, file: string, path: string): string[] {
  const properties = declaredProperties(file);
  if (!properties || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const property = properties.get(key);
    const where = `${path}.${key}`;
    if (!property) return [`${where}: unknown field`];
    if (!property.file) return [];
    if (property.shape === 'array') return Array.isArray(child) ? child.flatMap((item, index) => unknownFields(item, property.file!, `${where}[${index}]`)) : [];
    if (property.shape === 'map') {
      return child && typeof child === 'object' ? Object.entries(child).flatMap(([name, item]) => unknownFields(item, property.file!, `${where}.${name}`)) : [];
    }
    return unknownFields(child, property.file, where);
  });
}

function declarationFile(model: string): string {
  return join(dirname(require.resolve('kubernetes-models')), `${model}.d.ts`);
}

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  name: string;
  object: Record<string, unknown>;
}

/**
 * YAML 1.1, as kubectl reads it (sigs.k8s.io/yaml): `0440` is octal, `on`/`yes` are booleans,
 * so a value that would change type in the cluster changes type here too.
 */
function readYamlDocuments(file: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1', prettyErrors: false });
  const list = Array.isArray(documents) ? documents : [documents];
  return list
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
      return document.toJS({ maxAliasCount: 0 }) as unknown;
    })
    .filter((value) => value !== null && value !== undefined);
}

const yamlFiles = readdirSync(KUBE_DIR).filter((name) => /\.ya?ml$/.test(name)).sort();

const kustomization = (() => {
  const [document] = readYamlDocuments(join(KUBE_DIR, 'kustomization.yaml'));
  return document as { apiVersion: string; kind: string; resources: string[] };
})();

const manifests: Manifest[] = yamlFiles
  .filter((name) => name !== 'kustomization.yaml')
  .flatMap((file) =>
    readYamlDocuments(join(KUBE_DIR, file)).map((document) => {
      const object = document as Record<string, unknown>;
      const metadata = object.metadata as { name?: string } | undefined;
      return { file, apiVersion: String(object.apiVersion), kind: String(object.kind), name: String(metadata?.name), object };
    }),
  );

function only<T>(kind: string, name?: string): T {
  const found = manifests.filter((manifest) => manifest.kind === kind && (name === undefined || manifest.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0].object as T;
}

type PodSpec = NonNullable<NonNullable<IDeployment['spec']>['template']['spec']>;
type Container = PodSpec['containers'][number];
type EnvVar = NonNullable<Container['env']>[number];
type Probe = NonNullable<Container['livenessProbe']>;

const deployment = only<IDeployment>('Deployment');
const deploymentSpec = deployment.spec!;
const podSpec = deploymentSpec.template.spec!;
const container = podSpec.containers.find((candidate) => candidate.name === 'gateway') ?? podSpec.containers[0];
const env: EnvVar[] = container.env ?? [];
const service = only<IService>('Service');
const pdb = only<IPodDisruptionBudget>('PodDisruptionBudget');
const hpa = only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler');

function envValue(name: string): string | undefined {
  return env.find((variable) => variable.name === name)?.value;
}

function configMap(name: string): IConfigMap {
  return only<IConfigMap>('ConfigMap', name);
}

/** A Secret's data as text (stringData, or base64 data), from the example file. */
function secretData(name: string): Record<string, string> {
  const secret = only<ISecret>('Secret', name);
  const decoded = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
  return { ...decoded, ...secret.stringData };
}

function containerPort(name: string): number {
  const port = container.ports?.find((candidate) => candidate.name === name);
  if (!port) throw new Error(`the container has no port named ${name}`);
  return port.containerPort;
}

/** Bytes of a Kubernetes memory quantity (the suffixes a manifest would use). */
function bytes(quantity: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  if (!match) throw new Error(`unexpected quantity ${quantity}`);
  const factor: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * factor[match[2] ?? ''];
}

function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([key, value]) => labels?.[key] === value);
}

describe('deploy/kubernetes: schemas', () => {
  it('every document is a known kind and valid against its Kubernetes schema', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(7);
    const problems: string[] = [];
    for (const manifest of manifests) {
      const model = `${manifest.apiVersion}/${manifest.kind}`;
      const validate = KINDS[model];
      if (!validate) {
        problems.push(`${manifest.file}: unknown kind ${manifest.apiVersion} ${manifest.kind} (add its validator)`);
        continue;
      }
      try {
        validate(manifest.object);
      } catch (error) {
        problems.push(`${manifest.file}: ${manifest.kind} ${manifest.name}: ${(error as Error).message}`);
      }
      for (const field of unknownFields(manifest.object, declarationFile(model), manifest.kind)) {
        problems.push(`${manifest.file}: ${manifest.kind} ${manifest.name}: ${field}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the checks are not no-ops: a wrong type, a missing field and a misspelt field are refused', () => {
    const broken = structuredClone(deployment) as unknown as { spec: { replicas: unknown; template: { spec: { containers: Array<Record<string, unknown>> } } } };
    broken.spec.replicas = '3';
    expect(() => KINDS['apps/v1/Deployment'](broken)).toThrow(/replicas must be integer/);
    const nameless = structuredClone(deployment) as unknown as typeof broken;
    delete nameless.spec.template.spec.containers[0].name;
    expect(() => KINDS['apps/v1/Deployment'](nameless)).toThrow(/required property name/);
    const misspelt = structuredClone(deployment) as unknown as typeof broken;
    misspelt.spec.template.spec.containers[0].readinessprobe = {};
    expect(unknownFields(misspelt, declarationFile('apps/v1/Deployment'), 'Deployment')).toEqual([
      'Deployment.spec.template.spec.containers[0].readinessprobe: unknown field',
    ]);
  });

  it('kustomization.yaml lists every manifest but the secret example, and only files that exist', () => {
    expect(kustomization.kind).toBe('Kustomization');
    const manifestFiles = [...new Set(manifests.map((manifest) => manifest.file))];
    expect([...kustomization.resources].sort()).toEqual(manifestFiles.filter((file) => file !== SECRET_EXAMPLE).sort());
    for (const resource of kustomization.resources) expect(existsSync(join(KUBE_DIR, resource))).toBe(true);
  });

  it('the example secrets hold obvious placeholders only', () => {
    const secrets = manifests.filter((manifest) => manifest.kind === 'Secret');
    expect(secrets.map((secret) => secret.file)).toEqual(secrets.map(() => SECRET_EXAMPLE));
    for (const secret of secrets) {
      for (const value of Object.values(secretData(secret.name))) expect(value).toMatch(/REPLACE-ME/);
    }
  });
});

describe('deploy/kubernetes: what the service needs', () => {
  it('probes: startup and liveness on /healthz, readiness on /readyz, on the GraphQL port', () => {
    const graphqlPort = containerPort('graphql');
    expect(Number(envValue('PORT'))).toBe(graphqlPort);
    const onGraphqlPort = (probe: Probe | undefined, path: string): void => {
      expect(probe?.httpGet?.path).toBe(path);
      expect([graphqlPort, 'graphql']).toContain(probe?.httpGet?.port);
    };
    onGraphqlPort(container.startupProbe, '/healthz');
    onGraphqlPort(container.livenessProbe, '/healthz');
    onGraphqlPort(container.readinessProbe, '/readyz');
  });

  it('the pod outlives its drain: terminationGracePeriodSeconds > preStop sleep + SHUTDOWN_GRACE_MS + span flush', () => {
    const preStop = container.lifecycle?.preStop;
    const sleep = preStop?.sleep?.seconds ?? Number(/\bsleep\s+(\d+)/.exec(preStop?.exec?.command?.join(' ') ?? '')?.[1] ?? 0);
    expect(sleep).toBeGreaterThan(0);
    const graceMs = Number(envValue('SHUTDOWN_GRACE_MS') ?? envSchema.shape.SHUTDOWN_GRACE_MS.parse(undefined));
    // src/main.ts gives the last spans at most 5 s after the drain.
    const flushSeconds = 5;
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThan(sleep + graceMs / 1000);
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(sleep + graceMs / 1000 + flushSeconds);
  });

  it('the API keys: a file in a read-only mount of the Secret, never an environment variable', () => {
    const file = envValue('DEEPSEEK_API_KEY_FILE');
    expect(file).toBeDefined();
    const mount = container.volumeMounts?.find((candidate) => file!.startsWith(`${candidate.mountPath.replace(/\/$/, '')}/`));
    expect(mount?.readOnly).toBe(true);
    const volume = podSpec.volumes?.find((candidate) => candidate.name === mount!.name);
    expect(volume?.secret?.secretName).toBe('deepseek-api-keys');
    const relative = posix.relative(mount!.mountPath, file!);
    const items = volume!.secret!.items;
    const key = items ? items.find((item) => item.path === relative)?.key : relative;
    expect(key).toBe('api-keys');
    expect(Object.keys(secretData('deepseek-api-keys'))).toContain(key);
    // Octal in YAML 1.1, as the cluster reads it: owner and group (fsGroup) may read, no one else.
    expect(volume!.secret!.defaultMode).toBe(0o440);

    expect(env.map((variable) => variable.name)).not.toEqual(expect.arrayContaining(['DEEPSEEK_API_KEY']));
    expect(env.map((variable) => variable.name)).not.toEqual(expect.arrayContaining(['DEEPSEEK_API_KEYS']));
    for (const variable of env) {
      expect(variable.valueFrom?.secretKeyRef?.name).not.toBe('deepseek-api-keys');
      expect(variable.value ?? '').not.toMatch(/\bsk-[A-Za-z0-9]/);
    }
    for (const source of container.envFrom ?? []) expect(source.secretRef?.name).not.toBe('deepseek-api-keys');
  });

  it('the Service, PodDisruptionBudget and HorizontalPodAutoscaler select the Deployment and its pods', () => {
    const podLabels = deploymentSpec.template.metadata?.labels;
    expect(labelsMatch(deploymentSpec.selector.matchLabels, podLabels)).toBe(true);
    expect(labelsMatch(service.spec?.selector, podLabels)).toBe(true);
    expect(labelsMatch(pdb.spec?.selector?.matchLabels, podLabels)).toBe(true);
    expect(hpa.spec?.scaleTargetRef).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata?.name });

    const graphql = service.spec?.ports?.find((port) => port.name === 'graphql');
    expect([containerPort('graphql'), 'graphql']).toContain(graphql?.targetPort ?? graphql?.port);
    expect(service.spec?.type ?? 'ClusterIP').toBe('ClusterIP');

    // A budget the replicas can satisfy, or every node drain would hang.
    const replicas = deploymentSpec.replicas!;
    if (pdb.spec?.minAvailable !== undefined) expect(Number(pdb.spec.minAvailable)).toBeLessThan(replicas);
    else expect(Number(pdb.spec?.maxUnavailable)).toBeGreaterThanOrEqual(1);
  });

  it('QUOTA_REPLICAS equals the replicas and the HPA minimum; the HPA scales on CPU within the account cap', () => {
    expect(deploymentSpec.replicas).toBe(3);
    expect(Number(envValue('QUOTA_REPLICAS'))).toBe(deploymentSpec.replicas);
    expect(hpa.spec?.minReplicas).toBe(deploymentSpec.replicas);
    expect(hpa.spec?.maxReplicas).toBeGreaterThan(hpa.spec!.minReplicas!);
    const cpu = hpa.spec?.metrics?.find((metric) => metric.type === 'Resource' && metric.resource?.name === 'cpu');
    expect(cpu?.resource?.target).toEqual({ type: 'Utilization', averageUtilization: 70 });
    // DeepSeek caps calls in flight per account (2500 for deepseek-flash, the default model).
    const concurrency = Number(envValue('DEEPSEEK_MAX_CONCURRENCY') ?? envSchema.shape.DEEPSEEK_MAX_CONCURRENCY.parse(undefined));
    expect(hpa.spec!.maxReplicas * concurrency).toBeLessThanOrEqual(2500);
  });

  it('resources and hardening: memory request ≥ 384Mi, no root, read-only root filesystem', () => {
    const requests = container.resources?.requests ?? {};
    const limits = container.resources?.limits ?? {};
    expect(bytes(requests.memory!)).toBeGreaterThanOrEqual(bytes('384Mi'));
    expect(bytes(limits.memory!)).toBeGreaterThanOrEqual(bytes(requests.memory!));
    expect(requests.cpu).toBeDefined();

    const context = container.securityContext;
    expect(context?.runAsNonRoot ?? podSpec.securityContext?.runAsNonRoot).toBe(true);
    expect(context?.runAsUser ?? podSpec.securityContext?.runAsUser).toBe(1000);
    expect(context?.readOnlyRootFilesystem).toBe(true);
    expect(context?.allowPrivilegeEscalation).toBe(false);
    expect(context?.capabilities?.drop).toContain('ALL');
    expect((context?.seccompProfile ?? podSpec.securityContext?.seccompProfile)?.type).toBe('RuntimeDefault');
    const tmp = container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
    expect(podSpec.volumes?.find((volume) => volume.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  it('Prometheus scrapes /metrics on the metrics port, which listens on all interfaces', () => {
    const annotations = deploymentSpec.template.metadata?.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(Number(annotations['prometheus.io/port'])).toBe(containerPort('metrics'));
    expect(annotations['prometheus.io/path']).toBe('/metrics');
    expect(Number(envValue('METRICS_PORT'))).toBe(containerPort('metrics'));
    expect(envValue('METRICS_HOST')).toBe('0.0.0.0');
  });

  it('every environment variable set is one the service reads', () => {
    // envSchema, plus the OpenTelemetry exporter's own variables the README names.
    const known = new Set([...Object.keys(envSchema.shape), 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TIMEOUT']);
    const isKnown = (name: string): boolean => known.has(name) || name.startsWith('OTEL_BSP_');
    const names = env.map((variable) => variable.name);
    for (const source of container.envFrom ?? []) {
      const data = source.configMapRef ? configMap(source.configMapRef.name!).data : source.secretRef ? secretData(source.secretRef.name!) : {};
      names.push(...Object.keys(data ?? {}).map((key) => `${source.prefix ?? ''}${key}`));
    }
    expect(names.filter((name) => !isKnown(name))).toEqual([]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('the quotas ConfigMap is a policy file the service accepts, mounted where QUOTAS_FILE points', () => {
    const file = envValue('QUOTAS_FILE')!;
    const mount = container.volumeMounts?.find((candidate) => file.startsWith(`${candidate.mountPath.replace(/\/$/, '')}/`));
    const volume = podSpec.volumes?.find((candidate) => candidate.name === mount?.name);
    const relative = posix.relative(mount!.mountPath, file);
    const key = volume?.configMap?.items?.find((item) => item.path === relative)?.key ?? relative;
    const text = configMap(volume!.configMap!.name!).data?.[key];
    expect(text).toBeDefined();
    const policies = parsePolicies(text!, 'quotas ConfigMap');
    expect(policies.default).toBeDefined();
  });

  it('the pod’s environment, with its ConfigMaps, Secrets and mounted files, is a configuration the service starts with', () => {
    // The pod's filesystem as far as the service reads it: every secret and configMap mount,
    // laid out under a temporary root.
    const root = mkdtempSync(join(tmpdir(), 'deploy-manifests-'));
    try {
      const mounted = (path: string): string => {
        for (const mount of container.volumeMounts ?? []) {
          const volume = podSpec.volumes?.find((candidate) => candidate.name === mount.name);
          const source = volume?.secret
            ? { data: secretData(volume.secret.secretName!), items: volume.secret.items }
            : volume?.configMap
              ? { data: configMap(volume.configMap.name!).data ?? {}, items: volume.configMap.items }
              : undefined;
          if (!source || !path.startsWith(`${mount.mountPath.replace(/\/$/, '')}/`)) continue;
          const relative = posix.relative(mount.mountPath, path);
          const key = source.items ? source.items.find((item) => item.path === relative)?.key : relative;
          if (key === undefined || source.data[key] === undefined) throw new Error(`${path}: nothing is mounted there`);
          const local = join(root, path);
          mkdirSync(dirname(local), { recursive: true });
          writeFileSync(local, source.data[key]);
          return local;
        }
        return path;
      };
      const resolved: Record<string, string> = {};
      for (const variable of env) {
        const ref = variable.valueFrom;
        let value = variable.value;
        if (ref?.configMapKeyRef) value = configMap(ref.configMapKeyRef.name!).data?.[ref.configMapKeyRef.key];
        if (ref?.secretKeyRef) value = secretData(ref.secretKeyRef.name!)[ref.secretKeyRef.key];
        if (value === undefined) throw new Error(`${variable.name}: no value (${JSON.stringify(ref)})`);
        resolved[variable.name] = value.startsWith('/') ? mounted(value) : value;
      }

      const config = loadConfig(resolved, { dotenvPath: false });
      expect(config.nodeEnv).toBe('production');
      expect(config.auth).toMatchObject({ mode: 'jwt', keys: { kind: 'jwks' } });
      expect(config.deepseek.mode).toBe('real');
      expect(config.deepseek.apiKeys.length).toBeGreaterThanOrEqual(1);
      expect(config.server.port).toBe(containerPort('graphql'));
      expect(config.edge.metricsPort).toBe(containerPort('metrics'));
      expect(config.edge.metricsHost).toBe('0.0.0.0');
      expect(config.cache.redisUrl).toMatch(/^rediss?:\/\//);
      expect(config.quotas.file).toBeDefined();
      expect(config.quotas.replicas).toBe(deploymentSpec.replicas);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------
// Router configurations

interface SupergraphConfig {
  federation_version: string;
  subgraphs: Record<string, { routing_url: string; schema: { file?: string } }>;
}

const supergraphConfig = parseYaml(readFileSync(join(ROUTER_DIR, 'supergraph.yaml'), 'utf8')) as SupergraphConfig;

describe('deploy/router', () => {
  const [[subgraphName, subgraph]] = Object.entries(supergraphConfig.subgraphs);
  // Composed as `rover supergraph compose` would, from the subgraph supergraph.yaml names.
  const composed = composeServices([{ name: subgraphName, url: subgraph.routing_url, typeDefs: parseGraphQL(loadTypeDefs()) }]);
  const composedSubgraphs = [...(composed.supergraphSdl ?? '').matchAll(/@join__graph\(name: "([^"]+)", url: "([^"]+)"\)/g)].map(
    ([, name, url]) => ({ name, url }),
  );
  const subgraphNames = composedSubgraphs.map(({ name }) => name);

  it('supergraph.yaml composes, with the composition version CI uses, and routes to the Service', () => {
    expect(Object.keys(supergraphConfig.subgraphs)).toEqual(['deepseek']);
    expect(resolve(ROUTER_DIR, subgraph.schema.file!)).toBe(join(ROOT, 'schema/schema.graphql'));

    const url = new URL(subgraph.routing_url);
    expect(url.hostname).toBe(service.metadata?.name);
    expect(Number(url.port)).toBe(service.spec?.ports?.find((port) => port.name === 'graphql')?.port);
    expect(url.pathname).toBe('/graphql');

    const installed = (JSON.parse(readFileSync(require.resolve('@apollo/composition/package.json'), 'utf8')) as { version: string }).version;
    expect(supergraphConfig.federation_version).toBe(`=${installed}`);
    const linked = /specs\.apollo\.dev\/federation\/v(\d+)\.(\d+)/.exec(loadTypeDefs());
    const [major, minor] = installed.split('.').map(Number);
    expect(major * 1000 + minor).toBeGreaterThanOrEqual(Number(linked![1]) * 1000 + Number(linked![2]));

    expect(composed.errors ?? []).toEqual([]);
    expect(composedSubgraphs).toEqual([{ name: 'deepseek', url: subgraph.routing_url }]);
  });

  it('router.yaml (Apollo Router): headers, WebSocket passthrough and subgraph names match the supergraph', () => {
    const router = parseYaml(readFileSync(join(ROUTER_DIR, 'router.yaml'), 'utf8')) as {
      supergraph: { listen: string };
      headers: { all?: HeaderRules; subgraphs?: Record<string, HeaderRules> };
      subscription: { enabled: boolean; mode: { passthrough: { all?: unknown; subgraphs?: Record<string, { path: string; protocol: string }> } } };
      override_subgraph_url?: Record<string, string>;
      include_subgraph_errors?: { all?: boolean; subgraphs?: Record<string, boolean> };
      rhai?: { scripts?: string; main?: string };
    };
    type HeaderRules = { request: Array<{ propagate?: { named?: string } }> | { operations: Array<{ propagate?: { named?: string } }> } };
    const rules = (set: HeaderRules | undefined) => (set ? (Array.isArray(set.request) ? set.request : set.request.operations) : []);

    expect(router.supergraph.listen).toBe('0.0.0.0:4000');
    const propagated = [...rules(router.headers.all), ...rules(router.headers.subgraphs?.deepseek)].map((rule) => rule.propagate?.named?.toLowerCase());
    expect(propagated).toEqual(expect.arrayContaining(['authorization', 'traceparent']));

    expect(router.subscription.enabled).toBe(true);
    const passthrough = router.subscription.mode.passthrough.subgraphs ?? {};
    expect(passthrough.deepseek).toEqual({ path: '/graphql', protocol: 'graphql_ws' });
    const named = [
      ...Object.keys(passthrough),
      ...Object.keys(router.headers.subgraphs ?? {}),
      ...Object.keys(router.override_subgraph_url ?? {}),
      ...Object.keys(router.include_subgraph_errors?.subgraphs ?? {}),
    ];
    for (const name of named) expect(subgraphNames).toContain(name);

    // The subgraph authenticates a WebSocket from connection_init's `authorization`; the
    // router sends `token` unless the script sets the connection params.
    const script = readFileSync(join(ROUTER_DIR, router.rhai?.scripts ?? 'rhai', router.rhai?.main ?? 'main.rhai'), 'utf8');
    expect(script).toMatch(/Router\.APOLLO_SUBSCRIPTION_WS_CUSTOM_CONNECTION_PARAMS/);
    expect(script).toMatch(/params\.authorization\s*=\s*request\.headers\["authorization"\]/);
  });

  it('gateway.config.ts (Hive Gateway): propagates authorization and traceparent, subscribes with a POST', () => {
    // The CLI package is not a dependency here; defineConfig only returns its argument.
    jest.doMock('@graphql-hive/gateway', () => ({ defineConfig: <T>(config: T): T => config }), { virtual: true });
    const { gatewayConfig } = jest.requireActual<{
      gatewayConfig: {
        supergraph: unknown;
        propagateHeaders: { fromClientToSubgraphs(payload: { request: Request; subgraphName: string }): Record<string, string | null | undefined> };
        transportEntries?: Record<string, { options?: { method?: string; subscriptions?: { kind?: string; location?: string } } }>;
      };
    }>(join(ROUTER_DIR, 'gateway.config.ts'));

    expect(gatewayConfig.supergraph).toBe('./supergraph.graphql');
    const request = new Request('http://router/graphql', {
      headers: { authorization: 'Bearer abc', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', cookie: 'x=y' },
    });
    const headers = gatewayConfig.propagateHeaders.fromClientToSubgraphs({ request, subgraphName: 'deepseek' });
    expect(headers).toMatchObject({ authorization: 'Bearer abc', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(headers).not.toHaveProperty('cookie');

    const entry = gatewayConfig.transportEntries?.['*.http'] ?? gatewayConfig.transportEntries?.deepseek;
    const post = entry?.options?.method === 'POST';
    const ws = entry?.options?.subscriptions?.kind === 'ws' && entry.options.subscriptions.location === '/graphql';
    expect(post || ws).toBe(true);
  });
});
