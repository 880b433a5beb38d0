// A signed checkpoint verifies with the signer's public key only, and any changed field breaks it.
import { generateKeyPairSync } from 'node:crypto';
import {
  checkpointBody,
  keyIdOf,
  privateKeyFromPem,
  publicKeyFromPem,
  publicKeyPem,
  signCheckpoint,
  verifyCheckpoint,
} from './checkpoint';

const ROOT = '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328';
const checkpoint = {
  origin: 'finance-core/compliance/audit',
  treeSize: 8,
  rootHash: ROOT,
  timestamp: '2026-11-22T10:00:00.000Z',
};

describe('signed checkpoints', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');

  it('verifies with the public key, also after a JSON round trip and from PEM', () => {
    const signed = signCheckpoint(checkpoint, privateKey);
    expect(signed).toMatchObject({ ...checkpoint, keyId: keyIdOf(publicKey) });
    expect(signed.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(verifyCheckpoint(signed, publicKey)).toEqual({ valid: true });
    const pem = publicKeyPem(privateKey);
    expect(verifyCheckpoint(JSON.parse(JSON.stringify(signed)), publicKeyFromPem(pem))).toEqual({
      valid: true,
    });
  });

  it('signs the same bytes whether the root is given in hex or base64', () => {
    const base64 = Buffer.from(ROOT, 'hex').toString('base64');
    expect(checkpointBody({ ...checkpoint, rootHash: base64 })).toEqual(checkpointBody(checkpoint));
    expect(checkpointBody(checkpoint).toString()).toBe(
      'finance-audit-checkpoint/v1\n' +
        `{"origin":"finance-core/compliance/audit","rootHash":"${ROOT}","timestamp":"2026-11-22T10:00:00.000Z","treeSize":8}`,
    );
  });

  it.each([
    ['treeSize', { treeSize: 9 }],
    ['rootHash', { rootHash: ROOT.replace(/^5/, '6') }],
    ['timestamp', { timestamp: '2026-11-22T10:00:00.001Z' }],
    ['origin', { origin: 'another-log' }],
  ])('fails when %s changes', (_field, change) => {
    const signed = signCheckpoint(checkpoint, privateKey);
    expect(verifyCheckpoint({ ...signed, ...change }, publicKey)).toEqual({
      valid: false,
      reason: 'the signature does not match the checkpoint',
    });
  });

  it('names the key when another key signed it, and refuses keys that are not Ed25519', () => {
    const other = generateKeyPairSync('ed25519');
    const signed = signCheckpoint(checkpoint, other.privateKey);
    expect(verifyCheckpoint(signed, publicKey)).toEqual({
      valid: false,
      reason: `signed by key ${keyIdOf(other.publicKey)}, not by the given key ${keyIdOf(publicKey)}`,
    });
    // Same key id claimed, another key's signature: still refused.
    expect(verifyCheckpoint({ ...signed, keyId: keyIdOf(publicKey) }, publicKey).valid).toBe(false);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => signCheckpoint(checkpoint, ec.privateKey)).toThrow(/expected an Ed25519/);
    expect(() =>
      privateKeyFromPem(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    ).toThrow(/expected an Ed25519 private key, got a ec private key/);
  });

  it('refuses to sign a malformed checkpoint', () => {
    expect(() => signCheckpoint({ ...checkpoint, treeSize: -1 }, privateKey)).toThrow(/treeSize/);
    expect(() => signCheckpoint({ ...checkpoint, rootHash: 'abc' }, privateKey)).toThrow(
      /not a SHA-256 hash/,
    );
    expect(() => signCheckpoint({ ...checkpoint, timestamp: 'yesterday' }, privateKey)).toThrow(
      /timestamp/,
    );
  });
});
