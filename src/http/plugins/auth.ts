import type { FastifyRequest } from "fastify";
import { ERRORS } from "../../domain/errors.ts";
import type { Principal } from "../../services/auth.ts";

/** Who is calling: set for every /v1 route by the authentication hook (plugins/api-auth.ts). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw ERRORS.unauthenticated();
  return request.principal;
}

/** For the admin routes: 403 for anyone without the admin scope. */
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (!principalOf(request).scopes.has("admin")) throw ERRORS.forbidden("this needs the admin scope");
}
