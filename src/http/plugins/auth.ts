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
