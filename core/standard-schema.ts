/**
 * The Standard Schema interface (https://standardschema.dev, v1): zod, valibot, arktype and others
 * implement it, so a job's `schema` may come from any of them. Only the types are copied here;
 * nothing is imported from a validator library.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

export declare namespace StandardSchemaV1 {
  interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  interface PathSegment {
    readonly key: PropertyKey;
  }
  interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  type InferOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output'];
}

/** True for an object that implements Standard Schema v1. */
export function isStandardSchema(v: unknown): v is StandardSchemaV1 {
  const std = (v as { '~standard'?: { version?: unknown; validate?: unknown } } | null)?.['~standard'];
  return typeof std === 'object' && std !== null && std.version === 1 && typeof std.validate === 'function';
}

export type Validation<T> = { ok: true; value: T } | { ok: false; message: string; issues: Array<{ path: string; message: string }> };

/**
 * Validates `value` against a job's schema. The message names each failing field from `root`
 * (`data.size: expected a number`), so an HTTP 400, an enqueue error and a dead letter all say
 * which field was wrong.
 */
export async function validateWith<T>(schema: StandardSchemaV1<unknown, T>, value: unknown, root = 'data'): Promise<Validation<T>> {
  const result = await schema['~standard'].validate(value);
  if (!result.issues) return { ok: true, value: result.value };
  const issues = result.issues.map((i) => ({ path: issuePath(root, i.path), message: i.message }));
  return { ok: false, message: issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues };
}

function issuePath(root: string, path: StandardSchemaV1.Issue['path']): string {
  let out = root;
  for (const seg of path ?? []) {
    const key = typeof seg === 'object' && seg !== null ? seg.key : seg;
    out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  }
  return out;
}
