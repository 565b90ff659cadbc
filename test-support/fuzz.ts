/**
 * Property tests with a budget (fast-check), shared by every package.
 *
 * - `pnpm test` runs each property with its own small `numRuns`; `pnpm fuzz` sets FUZZ_RUNS
 *   (default 100,000) and runs only the tests declared with `itFuzz`.
 * - Every run starts from a fresh seed (or FUZZ_SEED), printed when the property fails.
 * - A failure is saved to `test/fuzz-corpus/<name>.json` of the package (seed, path and the
 *   shrunk counterexample); every later run replays the saved entries first, so a bug found once
 *   by `pnpm fuzz` stays covered by `pnpm test`. Commit the corpus file with the fix.
 * - FUZZ_TIME_LIMIT (ms, default 10 minutes) bounds one property under `pnpm fuzz`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { it } from 'vitest';

/** One saved failure. `seed` + `path` make fast-check replay the shrunk counterexample. */
export interface CorpusEntry {
  seed: number;
  path: string;
  counterexample: string;
  error: string;
  found: string;
}

type AnyProperty = fc.IRawProperty<any, boolean>;

const TITLE_PREFIX = 'fuzz: ';

function positiveInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

/** True under `pnpm fuzz` (FUZZ_RUNS set): budgets are large and time-limited. */
export function fuzzing(): boolean {
  return positiveInt('FUZZ_RUNS') !== undefined;
}

/** The number of inputs for one property: FUZZ_RUNS when set, else the test's own small budget. */
export function fuzzRuns(testDefault: number): number {
  return positiveInt('FUZZ_RUNS') ?? testDefault;
}

/** The package's regression corpus directory (vitest runs with the package as cwd). */
export function corpusDir(): string {
  return join(process.cwd(), 'test', 'fuzz-corpus');
}

function corpusFile(name: string): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new Error(`fuzz corpus name must be lower-case letters, digits, '.', '_' or '-': ${name}`);
  }
  return join(corpusDir(), `${name}.json`);
}

export function readCorpus(name: string): CorpusEntry[] {
  const file = corpusFile(name);
  if (!existsSync(file)) return [];
  const entries = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(entries)) throw new Error(`${file} must hold a JSON array`);
  return entries as CorpusEntry[];
}

function saveToCorpus(name: string, entry: CorpusEntry): string {
  const file = corpusFile(name);
  const entries = readCorpus(name);
  if (!entries.some((e) => e.seed === entry.seed && e.path === entry.path)) {
    entries.push(entry);
    mkdirSync(corpusDir(), { recursive: true });
    writeFileSync(file, `${JSON.stringify(entries, null, 2)}\n`);
  }
  return file;
}

function freshSeed(): number {
  return positiveInt('FUZZ_SEED') ?? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
}

function describeFailure(details: fc.RunDetails<unknown>): string {
  const error = details.errorInstance;
  return error instanceof Error ? error.message : String(error);
}

export interface FuzzOptions {
  /** Inputs per `pnpm test` run (FUZZ_RUNS replaces it under `pnpm fuzz`). */
  numRuns: number;
  /** Other fast-check parameters (maxSkipsPerRun, …); seed, path and numRuns are set here. */
  parameters?: Omit<fc.Parameters<unknown>, 'seed' | 'path' | 'numRuns' | 'reporter' | 'asyncReporter'>;
}

/**
 * Check `property` like fc.assert: first every corpus entry saved under `name`, then `numRuns`
 * fresh inputs from a fresh seed. A failure is saved to the corpus and thrown with its seed.
 */
export async function fuzz(name: string, property: AnyProperty, options: FuzzOptions): Promise<void> {
  for (const entry of readCorpus(name)) {
    const replay = await fc.check(property, { ...options.parameters, seed: entry.seed, path: entry.path });
    if (replay.failed) {
      throw new Error(
        `fuzz ${name}: the saved counterexample fails again (seed ${entry.seed}, path ${entry.path}, ` +
          `${corpusFile(name)}): ${describeFailure(replay as fc.RunDetails<unknown>)}\n` +
          `counterexample: ${fc.stringify(replay.counterexample)}`,
      );
    }
  }
  const seed = freshSeed();
  const numRuns = fuzzRuns(options.numRuns);
  const timeLimit = fuzzing() ? (positiveInt('FUZZ_TIME_LIMIT') ?? 600_000) : undefined;
  const started = Date.now();
  const details = (await fc.check(property, {
    ...options.parameters,
    seed,
    numRuns,
    ...(timeLimit === undefined ? {} : { interruptAfterTimeLimit: timeLimit, markInterruptAsFailure: false }),
  })) as fc.RunDetails<unknown>;
  if (fuzzing()) {
    const note = details.interrupted ? ` (stopped by FUZZ_TIME_LIMIT ${timeLimit} ms)` : '';
    console.info(
      `[fuzz] ${name}: ${details.numRuns} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${seed}${note}${details.failed ? ', FAILED' : ''}`,
    );
  }
  if (!details.failed) return;
  const counterexample = fc.stringify(details.counterexample);
  const error = describeFailure(details);
  const file = saveToCorpus(name, {
    seed: details.seed,
    path: details.counterexamplePath ?? '',
    counterexample,
    error,
    found: new Date().toISOString(),
  });
  throw new Error(
    `fuzz ${name} failed after ${details.numRuns} inputs (seed ${details.seed}, path ${details.counterexamplePath}); ` +
      `saved to ${file} (replayed by every later run; FUZZ_SEED=${details.seed} re-runs this seed)\n` +
      `counterexample: ${counterexample}\n${error}`,
  );
}

/**
 * A test that `pnpm fuzz` runs with the big budget: the title gets a `fuzz: ` prefix (the fuzz
 * task selects tests by it) and, under FUZZ_RUNS, a timeout that fits FUZZ_TIME_LIMIT.
 */
export function itFuzz(title: string, body: () => Promise<void> | void, timeout?: number): void {
  const limit = fuzzing() ? (positiveInt('FUZZ_TIME_LIMIT') ?? 600_000) * 4 + 60_000 : timeout;
  it(`${TITLE_PREFIX}${title}`, body, limit);
}
