/**
 * The ESM and CommonJS builds of this package each define their own error classes. An application
 * that loads both (ESM code next to a CommonJS dependency) would otherwise see `instanceof` fail for
 * an error made by the other build. Both builds mark their base class with the same registry symbol,
 * and `instanceof` accepts an object whose class chain carries it with the same class name.
 */
const PACKAGE_BRAND = Symbol.for('@net/tcp:error');

const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

export function brandBaseClass(base: abstract new (...args: never[]) => Error): void {
  Object.defineProperty(base, PACKAGE_BRAND, { value: true });
  Object.defineProperty(base, Symbol.hasInstance, {
    value(this: { name: string }, value: unknown): boolean {
      if (ordinaryHasInstance.call(this, value)) return true;
      if (typeof value !== 'object' || value === null) return false;
      for (let proto = Object.getPrototypeOf(value); proto !== null; proto = Object.getPrototypeOf(proto)) {
        const ctor = (proto as { constructor?: { name?: string; [PACKAGE_BRAND]?: boolean } }).constructor;
        if (ctor?.[PACKAGE_BRAND] === true && ctor.name === this.name) return true;
      }
      return false;
    },
  });
}
