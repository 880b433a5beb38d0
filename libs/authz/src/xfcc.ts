// Envoy's x-forwarded-client-cert header: who the sidecar authenticated with mutual TLS. Trusted
// only behind the mesh, where the sidecar replaces whatever the client sent (SANITIZE_SET).
import { isSpiffeId } from '@finance/platform';

export const XFCC_HEADER = 'x-forwarded-client-cert';

/** One proxy's entry: key/value pairs, keys lower-cased (Envoy's keys are case-insensitive). */
export type XfccElement = ReadonlyArray<readonly [key: string, value: string]>;

export class XfccSyntaxError extends Error {
  override readonly name = 'XfccSyntaxError';
}

/**
 * Parses `By=...;Hash=...;URI=...,By=...` into elements. Values holding `,`, `;` or `=` are
 * double-quoted with `\"` escapes (Envoy's format); anything else malformed throws.
 */
export function parseXfcc(header: string): XfccElement[] {
  const elements: XfccElement[] = [];
  let pairs: Array<[string, string]> = [];
  let key = '';
  let value = '';
  let inKey = true;
  let quoted = false;
  let wasQuoted = false;

  const endPair = () => {
    if (inKey) {
      if (key.trim() !== '') throw new XfccSyntaxError(`key without value: '${key.trim()}'`);
    } else {
      const k = key.trim().toLowerCase();
      if (k === '') throw new XfccSyntaxError('value without key');
      pairs.push([k, wasQuoted ? value : value.trim()]);
    }
    key = '';
    value = '';
    inKey = true;
    wasQuoted = false;
  };

  for (let i = 0; i < header.length; i++) {
    const c = header[i];
    if (quoted) {
      if (c === '\\' && i + 1 < header.length) value += header[++i];
      else if (c === '"') quoted = false;
      else value += c;
      continue;
    }
    if (inKey) {
      if (c === '=') inKey = false;
      else if (c === ';' || c === ',') {
        endPair();
        if (c === ',') {
          elements.push(pairs);
          pairs = [];
        }
      } else key += c;
      continue;
    }
    if (c === '"' && value.trim() === '' && !wasQuoted) {
      quoted = true;
      wasQuoted = true;
      value = '';
    } else if (c === ';' || c === ',') {
      endPair();
      if (c === ',') {
        elements.push(pairs);
        pairs = [];
      }
    } else if (wasQuoted) {
      if (c.trim() !== '') throw new XfccSyntaxError('text after a quoted value');
    } else if (c === '=') {
      throw new XfccSyntaxError('unquoted "=" in a value');
    } else value += c;
  }
  if (quoted) throw new XfccSyntaxError('unterminated quoted value');
  endPair();
  elements.push(pairs);
  return elements.filter((e) => e.length > 0);
}

/**
 * The caller's SPIFFE id from the element our own sidecar added (the last one), provided it was
 * added for us (`By` is this workload) and names exactly one SPIFFE URI, as an X.509-SVID does.
 */
export function principalFromXfcc(
  header: string | string[] | undefined,
  ownPrincipal: string,
): string | undefined {
  if (header === undefined) return undefined;
  let elements: XfccElement[];
  try {
    elements = parseXfcc(Array.isArray(header) ? header.join(',') : header);
  } catch {
    return undefined;
  }
  const last = elements.at(-1);
  if (!last) return undefined;
  const values = (k: string) => last.filter(([key]) => key === k).map(([, value]) => value);
  const by = values('by');
  const uris = values('uri');
  if (by.length !== 1 || by[0] !== ownPrincipal) return undefined;
  if (uris.length !== 1 || !isSpiffeId(uris[0])) return undefined;
  return uris[0];
}
