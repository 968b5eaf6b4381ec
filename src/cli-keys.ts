import { CliError } from "./cli/errors.ts";
import { type Config, loadConfig } from "./config.ts";
import { KyselyApiKeysRepository } from "./db/api-keys-repository.ts";
import { assertSchemaCurrent, migrateToLatest, openDatabase } from "./db/connect.ts";
import { EmbeddedDatabaseLockedError } from "./db/embedded-lock.ts";
import { isAppError } from "./domain/errors.ts";
import { AuthService } from "./services/auth.ts";
import { readLocalAdmin } from "./services/local-admin.ts";

interface KeyView {
  id: string;
  ownerId: string;
  name: string;
  scopes: string[];
  createdAt: string;
}

/** Where the keys live: the database directly, or the running embedded server that holds it. */
interface KeysBackend {
  create(input: { ownerId: string; name?: string; scopes: string[] }): Promise<{ id: string; key: string }>;
  list(ownerId: string | undefined): Promise<KeyView[]>;
  revoke(id: string): Promise<void>;
  close(): Promise<void>;
}

export type KeysArgs =
  | { sub: "create"; owner: string; name?: string; scope?: string[] }
  | { sub: "list"; owner?: string; json?: boolean }
  | { sub: "revoke"; keyId: string };

/** `imgup keys create|list|revoke`, arguments already parsed by the CLI; the exit code. */
export async function keysCommand(args: KeysArgs): Promise<number> {
  const config = loadConfig(process.env, { role: "api" });
  const backend = await openBackend(config);
  try {
    if (args.sub === "create") {
      const { id, key } = await backend.create({
        ownerId: args.owner,
        ...(args.name ? { name: args.name } : {}),
        scopes: args.scope ?? [],
      });
      console.log(`created API key ${id} for owner ${args.owner} (shown once, store it now):\n${key}`);
    } else if (args.sub === "list") {
      const keys = await backend.list(args.owner);
      if (args.json) console.log(JSON.stringify(keys, null, 2));
      else if (keys.length === 0) console.log("no active API keys");
      else
        for (const k of keys)
          console.log(`${k.id}  ${k.ownerId}  ${k.scopes.join(",") || "-"}  ${k.createdAt}  ${k.name}`);
    } else {
      await backend.revoke(args.keyId);
      console.log(`revoked ${args.keyId}`);
    }
  } finally {
    await backend.close();
  }
  return 0;
}

async function openBackend(config: Config): Promise<KeysBackend> {
  if (!config.database.url) {
    const server = readLocalAdmin(config.dataDir);
    if (server) return viaServer(server.url, server.token);
  }
  let handle: Awaited<ReturnType<typeof openDatabase>>;
  try {
    handle = await openDatabase(config.database);
  } catch (err) {
    // The server started between our look and the open: one more look at its file.
    const server = err instanceof EmbeddedDatabaseLockedError ? readLocalAdmin(config.dataDir) : null;
    if (server) return viaServer(server.url, server.token);
    throw err;
  }
  try {
    if (config.database.autoMigrate) await migrateToLatest(handle.db);
    else await assertSchemaCurrent(handle.db);
  } catch (err) {
    await handle.close();
    throw err;
  }
  const auth = new AuthService(new KyselyApiKeysRepository(handle.db), null);
  return {
    create: (input) => auth.createKey(input),
    list: async (ownerId) =>
      (await auth.listKeys(ownerId ? { ownerId, limit: 1000 } : { limit: 1000 })).map((k) => ({
        ...k,
        createdAt: k.createdAt.toISOString(),
      })),
    revoke: (id) =>
      auth.revokeKey(id).catch((err: unknown) => {
        // A mistyped or already revoked id is the operator's to fix: one line, no stack hint.
        if (isAppError(err) && err.status === 404) throw new CliError(`no active API key ${id}`);
        throw err;
      }),
    close: () => handle.close(),
  };
}

function viaServer(url: string, token: string): KeysBackend {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) {
      const detail = (() => {
        try {
          return (JSON.parse(text) as { detail?: string }).detail ?? text;
        } catch {
          return text;
        }
      })();
      throw new CliError(`the running imgup at ${url} answered ${res.status}: ${detail}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return {
    create: (input) => call("POST", "/v1/admin/keys", input),
    list: async (ownerId) =>
      (
        await call<{ items: KeyView[] }>(
          "GET",
          `/v1/admin/keys${ownerId ? `?owner=${encodeURIComponent(ownerId)}` : ""}`,
        )
      ).items,
    revoke: (id) => call("DELETE", `/v1/admin/keys/${encodeURIComponent(id)}`),
    close: async () => {},
  };
}
