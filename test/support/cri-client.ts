// A client of the CRI ImageService (runtime.v1, as kubelet calls it) on containerd's own gRPC socket:
// @grpc/grpc-js with the few messages of test/fixtures/cri/image-service.proto.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as typeof Grpc;
const protoLoader = require('@grpc/proto-loader') as typeof ProtoLoader;

export interface CriImage { id: string; repoTags: string[]; repoDigests: string[]; size: number }

export class CriImageClient {
  private readonly client: Grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  constructor(containerdSocket: string) {
    const def = protoLoader.loadSync(join(process.cwd(), 'test', 'fixtures', 'cri', 'image-service.proto'),
      { keepCase: false, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      runtime: { v1: { ImageService: new (addr: string, creds: Grpc.ChannelCredentials) => Grpc.Client } };
    };
    this.client = new pkg.runtime.v1.ImageService(`unix:${containerdSocket}`, grpc.credentials.createInsecure()) as CriImageClient['client'];
  }

  private call<T>(method: string, request: object, timeoutMs = 120_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const fn = this.client[method]!.bind(this.client) as (r: object, o: Grpc.CallOptions, cb: (e: Grpc.ServiceError | null, v: T) => void) => void;
      fn(request, { deadline: Date.now() + timeoutMs }, (e, v) => {
        if (e) reject(new Error(`CRI ${method}: ${grpc.status[e.code] ?? e.code}: ${e.details}`));
        else resolve(v);
      });
    });
  }

  /** PullImage; resolves with the image_ref containerd answers (the image id, sha256:…). */
  async pull(image: string): Promise<string> {
    return (await this.call<{ imageRef: string }>('PullImage', { image: { image } })).imageRef;
  }
  /** ImageStatus: null when containerd's CRI does not know the image. */
  async status(image: string): Promise<CriImage | null> {
    return (await this.call<{ image: CriImage | null }>('ImageStatus', { image: { image } })).image;
  }
  async list(): Promise<CriImage[]> {
    return (await this.call<{ images: CriImage[] }>('ListImages', {})).images;
  }
  async remove(image: string): Promise<void> {
    await this.call('RemoveImage', { image: { image } });
  }
  close(): void {
    this.client.close();
  }
}
