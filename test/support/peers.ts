// Tests find Docker's driver where the benchmarks build it.
export { findPeer, runPeer } from '../../bench/lib/peers.js';
