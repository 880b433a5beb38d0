// The key that signs audit checkpoints: read from AUDIT_SIGNING_KEY_FILE, or in development and
// tests a fresh one per start. Only the public half is ever logged or served.
import { keyIdOf, privateKeyFromPem, publicKeyPem } from '@finance/merkle';
import { StartupError } from '@finance/platform';
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ComplianceConfig } from '../config';

export const AUDIT_SIGNER = Symbol('AUDIT_SIGNER');

export interface AuditSigner {
  readonly privateKey: KeyObject;
  readonly keyId: string;
  readonly publicKeyPem: string;
  /** Generated at start-up: checkpoints it signed cannot be verified with the next start's key. */
  readonly ephemeral: boolean;
}

export function loadAuditSigner(
  config: Pick<ComplianceConfig, 'AUDIT_SIGNING_KEY_FILE'>,
  logger: Logger,
): AuditSigner {
  const file = config.AUDIT_SIGNING_KEY_FILE;
  let privateKey: KeyObject;
  if (file) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (error) {
      throw new StartupError(
        `AUDIT_SIGNING_KEY_FILE ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    try {
      privateKey = privateKeyFromPem(pem);
    } catch (error) {
      // The message never quotes the file: it holds a private key.
      throw new StartupError(
        `AUDIT_SIGNING_KEY_FILE ${file} is not an Ed25519 private key in PEM (${(error as Error).message.split('\n')[0]})`,
      );
    }
  } else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
  }
  const signer = {
    privateKey,
    keyId: keyIdOf(privateKey),
    publicKeyPem: publicKeyPem(privateKey),
    ephemeral: !file,
  };
  if (signer.ephemeral) {
    logger.warn(
      { keyId: signer.keyId, publicKey: signer.publicKeyPem },
      'audit checkpoints are signed with an ephemeral key; set AUDIT_SIGNING_KEY_FILE to keep one',
    );
  } else {
    logger.info(
      { keyId: signer.keyId, publicKey: signer.publicKeyPem },
      'audit signing key loaded',
    );
  }
  return signer;
}
