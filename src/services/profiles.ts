import type { ProfilesRepository } from "../db/profiles-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import { PROFILE_NAME, type ProfileContext, parseProfile, type UploadProfile } from "../domain/profiles.ts";

export type ProfileSource = "config" | "api";

export interface ProfileEntry {
  profile: UploadProfile;
  /** config: IMGUP_PROFILES, read-only here; api: stored through the admin API. */
  source: ProfileSource;
}

/** What an intent needs: the profile by name, or unknown_profile. */
export interface ProfileResolver {
  resolve(name: string): Promise<UploadProfile>;
}

/**
 * Upload profiles from two places: the operator's configuration (fixed for the process's life, and
 * winning on a name clash) and the database (the admin API; every instance reads the same rows).
 * Profiles are read per intent, not cached: an edit applies to the next intent on every instance.
 */
export class ProfilesService implements ProfileResolver {
  constructor(
    private readonly configured: Record<string, UploadProfile>,
    private readonly repo: ProfilesRepository,
    private readonly ctx: ProfileContext,
  ) {}

  async resolve(name: string): Promise<UploadProfile> {
    const found = await this.find(name);
    if (!found)
      throw ERRORS.unknownProfile(`no upload profile "${name.slice(0, 70)}"`, {
        extra: { field: "profile" },
      });
    return found.profile;
  }

  async list(): Promise<ProfileEntry[]> {
    const stored = await this.repo.list();
    const fromConfig = Object.values(this.configured).map((profile) => ({
      profile,
      source: "config" as const,
    }));
    const fromApi: ProfileEntry[] = [];
    for (const s of stored) {
      if (Object.hasOwn(this.configured, s.name)) continue;
      // One that no longer fits is left out here; GET by name says why, PUT replaces it.
      try {
        fromApi.push({ profile: this.read(s.name, s.settings), source: "api" });
      } catch {}
    }
    return [...fromConfig, ...fromApi].sort((a, b) => a.profile.name.localeCompare(b.profile.name));
  }

  async get(name: string): Promise<ProfileEntry> {
    const found = await this.find(name);
    if (!found) throw ERRORS.profileNotFound(`no upload profile "${name.slice(0, 70)}"`);
    return found;
  }

  /** Creates or replaces an admin API profile; `created` tells which. */
  async put(name: string, body: unknown): Promise<{ entry: ProfileEntry; created: boolean }> {
    this.assertWritable(name);
    let profile: UploadProfile;
    try {
      profile = parseProfile(name, body, this.ctx);
    } catch (err) {
      throw ERRORS.validation(err instanceof Error ? err.message : String(err));
    }
    const { name: _name, ...settings } = profile;
    const created = await this.repo.put(name, JSON.stringify(settings));
    return { entry: { profile, source: "api" }, created };
  }

  async delete(name: string): Promise<void> {
    this.assertWritable(name);
    if (!(await this.repo.delete(name)))
      throw ERRORS.profileNotFound(`no upload profile "${name.slice(0, 70)}"`);
  }

  private async find(name: string): Promise<ProfileEntry | null> {
    if (Object.hasOwn(this.configured, name)) {
      const profile = this.configured[name] as UploadProfile;
      return { profile, source: "config" };
    }
    if (!PROFILE_NAME.test(name)) return null;
    const stored = await this.repo.get(name);
    return stored ? { profile: this.read(name, stored.settings), source: "api" } : null;
  }

  private assertWritable(name: string): void {
    if (!PROFILE_NAME.test(name))
      throw ERRORS.validation(`profile name "${name.slice(0, 70)}" is not [a-z0-9_-]{1,64}`, {
        extra: { field: "name" },
      });
    if (Object.hasOwn(this.configured, name))
      throw ERRORS.profileReadOnly(`profile "${name}" is defined by IMGUP_PROFILES; change it there`);
  }

  /**
   * A stored profile, checked again: the deployment's presets or types may have changed since it
   * was written. One that no longer holds is refused by name rather than applied half.
   */
  private read(name: string, settings: string): UploadProfile {
    try {
      return parseProfile(name, JSON.parse(settings), this.ctx);
    } catch (err) {
      throw ERRORS.conflict(
        `upload profile "${name}" no longer fits this deployment (${err instanceof Error ? err.message : String(err)}): replace it`,
      );
    }
  }
}
