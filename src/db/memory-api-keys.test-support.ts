import type { ApiKeyRecord, ApiKeysRepository } from "./api-keys-repository.ts";

/** ApiKeysRepository in memory, for service-level tests. */
export function memoryApiKeys(): ApiKeysRepository {
  const rows = new Map<string, ApiKeyRecord & { keyHash: string; revoked: boolean }>();
  const active = () => [...rows.values()].filter((r) => !r.revoked);
  const view = ({
    keyHash: _h,
    revoked: _r,
    ...record
  }: ApiKeyRecord & { keyHash: string; revoked: boolean }) => record;
  return {
    insert: async (k) => void rows.set(k.keyHash, { ...k, createdAt: new Date(), revoked: false }),
    findByHash: async (h) => {
      const row = rows.get(h);
      return row && !row.revoked ? view(row) : null;
    },
    count: async () => active().length,
    list: async ({ ownerId, limit }) =>
      active()
        .filter((r) => ownerId === undefined || r.ownerId === ownerId)
        .reverse()
        .slice(0, limit)
        .map(view),
    revoke: async (id) => {
      const row = active().find((r) => r.id === id);
      if (!row) return false;
      row.revoked = true;
      return true;
    },
  };
}
