export { RECORD_VERSION } from './records';
export function recordVersion(): u32 { return 1; }
