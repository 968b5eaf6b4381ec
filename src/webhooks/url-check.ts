import { ERRORS } from "../domain/errors.ts";
import type { WebhookUrlCheck } from "../services/webhook-ports.ts";
import { checkedAddresses, PrivateAddressError, type Resolver } from "./http-transport.ts";

/** Registration's check of an endpoint URL; delivery checks the address again on every attempt. */
export function webhookUrlCheck(opts: { allowPrivate: boolean; resolve?: Resolver }): WebhookUrlCheck {
  return async (raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw ERRORS.invalidWebhookUrl("not an absolute URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:")
      throw ERRORS.invalidWebhookUrl("only http and https");
    if (url.username || url.password)
      throw ERRORS.invalidWebhookUrl("credentials in the URL are not accepted");
    try {
      await checkedAddresses(url.hostname, opts);
    } catch (err) {
      if (err instanceof PrivateAddressError) {
        throw ERRORS.webhookUrlNotAllowed(`${err.message} (IMGUP_WEBHOOK_ALLOW_PRIVATE=true allows it)`);
      }
      throw ERRORS.invalidWebhookUrl(`${url.hostname} does not resolve`);
    }
  };
}
