// containerd's CRI plugin pulling from a private registry: the least config its ImageService needs (the
// snapshotter it unpacks into, snapshot annotations passed on, private CNI dirs — no pod network is set
// up —, no TCP service) and plain HTTP to the registry on 127.0.0.1 through containerd's hosts.toml.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The CRI part of the config of a containerd in `dir` whose CRI pulls from `registryHost` into `snapshotter`. */
export function criToml(dir: string, snapshotter: string, registryHost: string): string {
  const hostsDir = join(dir, 'certs.d', registryHost);
  mkdirSync(hostsDir, { recursive: true });
  writeFileSync(join(hostsDir, 'hosts.toml'),
    `server = "http://${registryHost}"\n[host."http://${registryHost}"]\n  capabilities = ["pull", "resolve"]\n`);
  const q = (s: string) => JSON.stringify(s);
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    '  disable_tcp_service = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    `    snapshotter = ${q(snapshotter)}`,
    '    disable_snapshot_annotations = false',
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    bin_dir = ${q(join(dir, 'cni', 'bin'))}`,
    `    conf_dir = ${q(join(dir, 'cni', 'net.d'))}`,
    '  [plugins."io.containerd.grpc.v1.cri".registry]',
    `    config_path = ${q(join(dir, 'certs.d'))}`,
  ].join('\n');
}

/** The blobs a registry served in `log` (its access log) with their response sizes. */
export function servedBlobs(log: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of log.matchAll(/"GET \/v2\/[^ ]*\/blobs\/(sha256:[0-9a-f]{64}) HTTP\/[0-9.]+" (\d{3}) (\d+)/g)) {
    if (m[2] === '200') out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[3]));
  }
  return out;
}
