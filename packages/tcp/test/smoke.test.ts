import { expect, it } from 'vitest';
import { placeholder } from '../src/index.js';
it('works', () => {
  expect(placeholder).toBe(1);
});
