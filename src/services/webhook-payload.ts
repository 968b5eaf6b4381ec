import type { StoredEvent } from "../db/events-repository.ts";
import type { OutboxEventType } from "../domain/webhook-events.ts";
import { type ImageView, toImageView, type UrlBuilder } from "./image-view.ts";

/** What a webhook body and an item of GET /v1/events are: the same JSON. */
export interface AppEvent {
  /** evt_…: stable across retries and replays (the webhook-id header); receivers de-duplicate on it. */
  id: string;
  type: OutboxEventType;
  /** When the change happened. */
  timestamp: string;
  /** The image as the change left it, rendered now (private URLs are freshly signed). */
  data: ImageView;
}

export function renderEvent(event: StoredEvent, urls: UrlBuilder): AppEvent {
  return {
    id: event.id,
    type: event.type,
    timestamp: event.createdAt.toISOString(),
    data: toImageView(event.image, urls),
  };
}
