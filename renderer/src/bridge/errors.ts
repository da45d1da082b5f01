import type { ApiError } from '../../../shared/api.ts';

/** A failed API call: the engine's `{ error: ApiError }`, or a transport failure (E_NETWORK, E_HTTP). */
export class ApiCallError extends Error implements ApiError {
  readonly code: string;
  readonly issues?: { path: string; message: string }[];
  readonly status: number | null;

  constructor(error: ApiError, status: number | null = null) {
    super(error.message);
    this.name = 'ApiCallError';
    this.code = error.code;
    if (error.issues) this.issues = error.issues;
    this.status = status;
  }

  toJSON(): ApiError {
    return { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) };
  }
}

export function isApiError(value: unknown): value is ApiError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === 'string' && typeof v.message === 'string';
}

/** `{ error: ApiError }` as returned by the control API and (unwrapped) IPC. */
export function isErrorEnvelope(value: unknown): value is { error: ApiError } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === 'error' && isApiError((value as { error: unknown }).error);
}

export function toApiCallError(err: unknown): ApiCallError {
  if (err instanceof ApiCallError) return err;
  if (isApiError(err)) return new ApiCallError(err);
  if (err instanceof Error) return new ApiCallError({ code: 'E_INTERNAL', message: err.message });
  return new ApiCallError({ code: 'E_INTERNAL', message: String(err) });
}
