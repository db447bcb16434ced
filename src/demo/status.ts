// Reads a demo member's state: its admin /status (bearer token) and, for the summary, the
// sessions in its state file (read-only; the daemon keeps writing it in WAL mode).
import Database from 'better-sqlite3';
import type { Member } from './community.js';

export interface MemberStatus {
  /** normal | sos | rescue (from the rescue controller; 'normal' when rescue is off). */
  readonly state: 'normal' | 'sos' | 'rescue';
  readonly mode: string | null;
  /** Pr the redirector uses (0 unless mode on). */
  readonly pr: number;
  readonly region: string | null;
  readonly sessions: readonly {
    readonly id: string | null;
    readonly role: string;
    readonly peer: string;
    readonly state: string;
    readonly rate: number;
  }[];
}

interface StatusBody {
  region?: string;
  info?: {
    rescue?: {
      mode?: string;
      state?: 'normal' | 'sos' | 'rescue';
      pr_published?: number;
      sessions?: MemberStatus['sessions'];
    };
  };
}

/** GET /status with the member's token; throws on transport errors or a non-200 answer. */
export async function memberStatus(m: Member, timeoutMs = 3_000): Promise<MemberStatus> {
  const res = await fetch(`${m.adminUrl}/status`, {
    headers: { authorization: `Bearer ${m.token}` },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) throw new Error(`${m.name} /status answered ${res.status}`);
  const body = (await res.json()) as StatusBody;
  const r = body.info?.rescue;
  return {
    state: r?.state ?? 'normal',
    mode: r?.mode ?? null,
    pr: r?.pr_published ?? 0,
    region: body.region ?? null,
    sessions: r?.sessions ?? [],
  };
}

/** Sessions this member opened as origin (accepted by a rescuer) and how many of them have closed. */
export function originSessionCounts(m: Member): { opened: number; closed: number } {
  let db: Database.Database | undefined;
  try {
    db = new Database(m.stateFile, { readonly: true, fileMustExist: true });
    const row = db
      .prepare(
        `SELECT COUNT(*) AS opened, COUNT(closed_at) AS closed FROM sessions
          WHERE role = 'origin' AND id IS NOT NULL`,
      )
      .get() as { opened: number; closed: number };
    return { opened: row.opened, closed: row.closed };
  } catch {
    return { opened: 0, closed: 0 };
  } finally {
    db?.close();
  }
}
