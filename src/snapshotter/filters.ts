// PLACEHOLDER until the filters branch lands: matches everything, parses nothing.
export interface SnapshotFields { name: string; parent: string; kind: 'view' | 'active' | 'committed'; labels: Record<string, string> }
export type SnapshotFilter = (s: SnapshotFields) => boolean;
export class FilterSyntaxError extends Error {}
export function parseFilters(_filters: readonly string[]): SnapshotFilter {
  return () => true;
}
