/**
 * How an endpoint's index shards are named (issue 12): shard 0 is the endpoint object itself;
 * shards 1.. are ShardObjects named by (endpoint, generation, shard), so a re-created endpoint
 * never meets an old incarnation's shards. Jobs and the edge both name them from here.
 */
export interface ShardAddr {
  endpointId: string;
  generation: string;
  shard: number;
}

export function shardName(a: ShardAddr): string {
  return `${a.endpointId}/${a.generation}/${a.shard}`;
}
