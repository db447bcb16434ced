// A request body of unknown length (chunked), counted as it streams and stopped past the
// configured limit: the front and the rescue relay use it alike (proxy.limits.max_body_bytes).
import { Transform, type TransformCallback } from 'node:stream';
import { ProxyError } from './errors.js';

export class BodyLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) cb(new ProxyError('PRX_ERR_BODY_TOO_LARGE'));
    else cb(null, chunk);
  }
}
