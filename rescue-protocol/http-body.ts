// Shared by the control server and client: the control endpoints and a size-capped body reader.

export const RESCUE_PATH = '/v1/rescue';
export const HEALTH_PATH = '/v1/health';
/** Control messages are small (an SOS with 64 names and 256 micro-cache paths fits easily). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** The request body, or null once it exceeds `cap` bytes (reading stops there). */
export async function readCapped(req: AsyncIterable<Buffer>, cap: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += chunk.length;
    if (total > cap) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
