import type { Db } from "./schema.ts";

export interface StoredProfile {
  name: string;
  /** The profile's JSON (UploadProfile without its name), validated when it was written. */
  settings: string;
  updatedAt: Date;
}

/** Upload profiles of the admin API, in the database so every instance sees the same ones. */
export interface ProfilesRepository {
  list(): Promise<StoredProfile[]>;
  get(name: string): Promise<StoredProfile | null>;
  /** true when the profile is new. */
  put(name: string, settings: string): Promise<boolean>;
  /** false when there was none. */
  delete(name: string): Promise<boolean>;
}

export class KyselyProfilesRepository implements ProfilesRepository {
  constructor(private readonly db: Db) {}

  async list(): Promise<StoredProfile[]> {
    const rows = await this.db.selectFrom("upload_profiles").selectAll().orderBy("name").execute();
    return rows.map(toStored);
  }

  async get(name: string): Promise<StoredProfile | null> {
    const row = await this.db
      .selectFrom("upload_profiles")
      .selectAll()
      .where("name", "=", name)
      .executeTakeFirst();
    return row ? toStored(row) : null;
  }

  async put(name: string, settings: string): Promise<boolean> {
    // xmax = 0 only on a freshly inserted row: tells a create from a replace in one statement.
    const row = await this.db
      .insertInto("upload_profiles")
      .values({ name, settings })
      .onConflict((oc) => oc.column("name").doUpdateSet({ settings, updated_at: new Date() }))
      .returning((eb) => eb.ref("xmax" as never).as("xmax"))
      .executeTakeFirstOrThrow();
    return String((row as { xmax: unknown }).xmax) === "0";
  }

  async delete(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom("upload_profiles").where("name", "=", name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

function toStored(r: { name: string; settings: string; updated_at: Date | string }): StoredProfile {
  return { name: r.name, settings: r.settings, updatedAt: new Date(r.updated_at) };
}
