import type { DatabaseBreaker } from "./breaker.ts";

/** Only ports whose every method returns a promise can be guarded (the breaker is async). */
type AsyncMethods<T> = {
  [K in keyof T]: T[K] extends (...args: never[]) => infer R
    ? R extends Promise<unknown>
      ? T[K]
      : never
    : T[K];
};

/**
 * Every method of a database port runs through the breaker (and its timeout), so one outage opens
 * one breaker for all ports and each call then fails at once instead of waiting out a connect.
 */
export function guardPort<T extends object & AsyncMethods<T>>(port: T, breaker: DatabaseBreaker): T {
  return new Proxy(port, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      // Called on the target itself: classes with #private fields reject a proxy as `this`.
      return (...args: unknown[]) => breaker.execute(() => value.apply(target, args) as Promise<unknown>);
    },
  });
}
