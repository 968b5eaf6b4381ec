import type { Db } from "./schema.ts";

export interface ApiKeyRecord {
  id: string;
  ownerId: string;
  name: string;
  scopes: string[];
  createdAt: Date;
}

export interface ApiKeysRepository {
  insert(key: {
    id: string;
    ownerId: string;
    keyHash: string;
    name: string;
    scopes: string[];
  }): Promise<void>;
  /** Only keys that are not revoked. */
  findByHash(keyHash: string): Promise<ApiKeyRecord | null>;
  count(): Promise<number>;
  /** Active keys, newest first; of one owner when given. */
  list(opts: { ownerId?: string; limit: number }): Promise<ApiKeyRecord[]>;
  /** false when there is no such active key. */
  revoke(id: string): Promise<boolean>;
}

export class KyselyApiKeysRepository implements ApiKeysRepository {
  constructor(private readonly db: Db) {}

  async insert(key: {
    id: string;
    ownerId: string;
    keyHash: string;
    name: string;
    scopes: string[];
  }): Promise<void> {
    await this.db
      .insertInto("api_keys")
      .values({
        id: key.id,
        owner_id: key.ownerId,
        key_hash: key.keyHash,
        name: key.name,
        scopes: key.scopes.join(" "),
      })
      .execute();
  }

  async findByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const row = await this.db
      .selectFrom("api_keys")
      .selectAll()
      .where("key_hash", "=", keyHash)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<string | number>().as("n"))
      .where("revoked_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async list(opts: { ownerId?: string; limit: number }): Promise<ApiKeyRecord[]> {
    let q = this.db
      .selectFrom("api_keys")
      .selectAll()
      .where("revoked_at", "is", null)
      .orderBy("created_at", "desc")
      .orderBy("id")
      .limit(opts.limit);
    if (opts.ownerId !== undefined) q = q.where("owner_id", "=", opts.ownerId);
    return (await q.execute()).map(toRecord);
  }

  async revoke(id: string): Promise<boolean> {
    const out = await this.db
      .updateTable("api_keys")
      .set({ revoked_at: new Date() })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return Number(out.numUpdatedRows) > 0;
  }
}

function toRecord(row: {
  id: string;
  owner_id: string;
  name: string;
  scopes: string;
  created_at: Date | string;
}): ApiKeyRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    name: row.name,
    scopes: row.scopes.split(" ").filter(Boolean),
    createdAt: new Date(row.created_at),
  };
}
