import type { ClaimsRepository } from "../db/claims-repository.ts";
import { ERRORS, isAppError } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { isImageId } from "../domain/keys.ts";
import { REF_MAX_LENGTH, validRef } from "../domain/profiles.ts";
import type { Principal } from "./auth.ts";
import type { ImagesService } from "./images.ts";

export interface ClaimInput {
  ref?: string | undefined;
  /** Delete the owner's other images holding `ref` (a changed profile picture). */
  replace?: boolean | undefined;
}

export interface ClaimOutcome {
  image: ImageRecord;
  /** Ids of the images `replace` deleted. */
  replaced: string[];
}

/** POST /v1/images/{id}/claim: the app attaches an upload to one of its records. */
export class ClaimsService {
  constructor(
    private readonly claims: ClaimsRepository,
    private readonly images: Pick<ImagesService, "delete">,
  ) {}

  async claim(principal: Principal, id: string, input: ClaimInput): Promise<ClaimOutcome> {
    const ref = input.ref ?? null;
    if (ref !== null && !validRef(ref)) {
      throw ERRORS.validation(`ref must be 1..${REF_MAX_LENGTH} characters without control characters`, {
        extra: { field: "ref" },
      });
    }
    if (input.replace && ref === null)
      throw ERRORS.validation("replace needs a ref: it replaces the images holding it", {
        extra: { field: "replace" },
      });
    if (!isImageId(id)) throw ERRORS.imageNotFound(`no image ${id}`);
    const result = await this.claims.claim(id, principal.ownerId, ref);
    switch (result.outcome) {
      case "not_found":
        throw ERRORS.imageNotFound(`no image ${id}`);
      case "not_claimable":
        throw ERRORS.imageNotClaimable(`image ${id} is ${result.image.status}: there is nothing to keep`);
      case "ref_conflict":
        throw ERRORS.alreadyClaimed(`image ${id} is claimed as ${JSON.stringify(result.image.ref)}`);
    }
    const replaced: string[] = [];
    // After the claim, so a failed claim deletes nothing; a retry finishes what a crash left.
    if (input.replace && ref !== null) {
      for (const other of await this.claims.holdersOfRef(principal.ownerId, ref, id)) {
        try {
          await this.images.delete(principal, other);
          replaced.push(other);
        } catch (err) {
          // Deleted meanwhile by someone else: what replace wanted anyway.
          if (!(isAppError(err) && err.code === "image_not_found")) throw err;
        }
      }
    }
    return { image: result.image, replaced };
  }
}
