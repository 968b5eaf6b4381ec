import type { FastifyRequest } from "fastify";
import { ERRORS } from "../../domain/errors.ts";
import type { AuthService, Principal } from "../../services/auth.ts";

/** preHandler for authenticated routes: sets request.principal or fails with 401. */
export function authenticate(auth: AuthService) {
  return async (request: FastifyRequest): Promise<void> => {
    request.principal = await auth.authenticate(request.headers.authorization);
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw ERRORS.unauthenticated();
  return request.principal;
}

/** For the admin routes, after authenticate: 403 for anyone without the admin scope. */
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (!principalOf(request).scopes.has("admin")) throw ERRORS.forbidden("this needs the admin scope");
}
