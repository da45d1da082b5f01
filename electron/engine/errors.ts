/**
 * Errors in the shape each client expects — one place maps a Tollgate error to a provider's
 * error body. Budget blocks use 402 and ledger failures 424: the official SDKs retry 429 and
 * 5xx automatically, and a blocked call must not be retried.
 */
export type ErrorCode = 'E_FORBIDDEN_HOST' | 'E_FORBIDDEN_ORIGIN' | 'E_METHOD' | 'E_CAP_BLOCKED' | 'E_PAUSED' | 'E_LEDGER_WRITE' | 'E_BAD_REQUEST' | 'E_TOO_LARGE' | 'E_UPSTREAM' | 'E_UPSTREAM_TIMEOUT' | 'E_KEY_REVOKED' | 'E_KEY_UNKNOWN' | 'E_NOT_FOUND' | 'E_KEY_PROVIDER' | 'E_KEY_UNREADABLE' | 'E_KEY_PROJECT';

export const STATUS: Record<ErrorCode, number> = {
  E_FORBIDDEN_HOST: 403,
  E_FORBIDDEN_ORIGIN: 403,
  E_METHOD: 405,
  E_CAP_BLOCKED: 402,
  E_PAUSED: 402,
  E_LEDGER_WRITE: 424,
  E_BAD_REQUEST: 400,
  E_TOO_LARGE: 413,
  E_UPSTREAM: 502,
  E_UPSTREAM_TIMEOUT: 504,
  E_KEY_REVOKED: 401,
  E_KEY_UNKNOWN: 401,
  E_KEY_PROVIDER: 401,
  E_KEY_UNREADABLE: 401,
  E_KEY_PROJECT: 403,
  E_NOT_FOUND: 404,
};

export class ProxyError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly extraHeaders: Record<string, string> = {}) {
    super(message);
  }
  get status(): number {
    return STATUS[this.code];
  }
}

const OPENAI_TYPE: Record<number, string> = { 400: 'invalid_request_error', 401: 'authentication_error', 402: 'insufficient_quota', 403: 'permission_error', 404: 'not_found_error', 405: 'invalid_request_error', 413: 'invalid_request_error', 424: 'server_error', 502: 'server_error', 504: 'timeout' };
const ANTHROPIC_TYPE: Record<number, string> = { 400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error', 404: 'not_found_error', 405: 'invalid_request_error', 413: 'request_too_large', 424: 'api_error', 502: 'api_error', 504: 'timeout_error' };
const GEMINI_STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 402: 'FAILED_PRECONDITION', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 405: 'INVALID_ARGUMENT', 413: 'INVALID_ARGUMENT', 424: 'UNAVAILABLE', 502: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

/** The body and content type of an error for `provider`'s clients. */
export function errorBody(provider: string, status: number, code: string, message: string): { body: string; contentType: string } {
  switch (provider) {
    case 'anthropic':
      return { contentType: 'application/json', body: JSON.stringify({ type: 'error', error: { type: ANTHROPIC_TYPE[status] ?? 'api_error', message } }) };
    case 'gemini':
      return { contentType: 'application/json', body: JSON.stringify({ error: { code: status, message, status: GEMINI_STATUS[status] ?? 'UNKNOWN' } }) };
    case 'fal':
    case 'fal-queue':
      return { contentType: 'application/json', body: JSON.stringify({ detail: message }) };
    case 'replicate':
      return { contentType: 'application/problem+json', body: JSON.stringify({ title: code, detail: message, status }) };
    default:
      return { contentType: 'application/json', body: JSON.stringify({ error: { message, type: OPENAI_TYPE[status] ?? 'server_error', param: null, code: code.toLowerCase() } }) };
  }
}
