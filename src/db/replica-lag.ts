/** A primary WAL position and when it was read: a replica that replayed it has every write up to then. */
interface Sample {
  at: number;
  lsn: bigint;
}

const MAX_SAMPLES = 256;

/**
 * The primary's WAL positions sampled at each check, to bound a replica's lag in time from its
 * replay position alone. The lag is an upper bound of the age of the oldest write the replica is
 * missing: 0 when it replayed the newest sample, else the age of the newest sample it replayed.
 * The age of its last replayed commit is another such bound; the smaller one counts. An idle
 * primary leaves the newest sample where the replica is: lag 0, however old its last commit.
 */
export class WalSamples {
  private readonly samples: Sample[] = [];

  /** @param horizonMs samples older than this say no more than "too far behind": dropped. */
  constructor(private readonly horizonMs: number) {}

  add(at: number, lsn: bigint): void {
    this.samples.push({ at, lsn });
    const oldest = at - this.horizonMs;
    // The oldest sample inside the horizon stays, so a replica behind all of them is bounded by it.
    while (this.samples.length > MAX_SAMPLES || (this.samples[1] && (this.samples[1] as Sample).at < oldest))
      this.samples.shift();
  }

  /** Infinity without a sample or a replay position (a replica that never streamed). */
  lagMs(replayed: bigint | null, sinceXactMs: number | null, now: number): number {
    const latest = this.samples[this.samples.length - 1];
    if (replayed === null || !latest) return Number.POSITIVE_INFINITY;
    if (replayed >= latest.lsn) return 0;
    // Behind every sample: at least as old as the oldest one kept.
    let bound = now - (this.samples[0] as Sample).at + 1;
    for (let i = this.samples.length - 1; i >= 0; i--) {
      const s = this.samples[i] as Sample;
      if (s.lsn <= replayed) {
        bound = now - s.at;
        break;
      }
    }
    return sinceXactMs === null ? bound : Math.max(0, Math.min(bound, sinceXactMs));
  }
}
