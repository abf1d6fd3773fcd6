import type { Resolvers } from '../generated/types';
import { Completion } from './completion';
import { Mutation } from './mutation';
import { Query } from './query';
import { Subscription } from './subscription';

export const resolvers: Resolvers = { Query, Mutation, Subscription, Completion };
