// Values shared between many objects (the parts every task of a graph has in common) are frozen,
// so code that edits one object's copy fails loudly instead of editing all of them.

/** `v` and every object and array inside it, frozen; returns `v`. */
export function deepFreeze<T extends object>(v: T): T {
  for (const x of Object.values(v)) if (x && typeof x === 'object') deepFreeze(x as object);
  return Object.freeze(v);
}
