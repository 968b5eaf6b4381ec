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
    if (!row) return null;
    return {
      id: row.id,
      ownerId: row.owner_id,
      name: row.name,
      scopes: row.scopes.split(" ").filter(Boolean),
      createdAt: new Date(row.created_at),
    };
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<string | number>().as("n"))
      .where("revoked_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
