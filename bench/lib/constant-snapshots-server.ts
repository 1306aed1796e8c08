// A Snapshots gRPC server on @grpc/grpc-js (the library our snapshotter serves with) that does no work:
// Stat answers a constant. What a call costs it is the floor of any snapshotter served with grpc-js.
//   node dist/bench/lib/constant-snapshots-server.js SOCKET
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as typeof Grpc;
const protoLoader = require('@grpc/proto-loader') as typeof ProtoLoader;
const protoDir = resolve(process.cwd(), 'proto');
// the same loader options as src/snapshotter/server.ts
const definition = protoLoader.loadSync(join(protoDir, 'containerd/services/snapshots/v1/snapshots.proto'), {
  includeDirs: [protoDir], keepCase: false, longs: Number, enums: String, defaults: true,
});
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  containerd: { services: { snapshots: { v1: { Snapshots: { service: Grpc.ServiceDefinition } } } } };
};
const at = { seconds: 1, nanos: 0 };
const info = { name: 'p', parent: '', kind: 'COMMITTED', labels: {}, createdAt: at, updatedAt: at };
const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
server.addService(pkg.containerd.services.snapshots.v1.Snapshots.service, {
  Stat: (_call: unknown, done: Grpc.sendUnaryData<unknown>) => done(null, { info }),
});
server.bindAsync(`unix:${process.argv[2]}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
});
process.on('SIGTERM', () => { server.forceShutdown(); process.exit(0); });
