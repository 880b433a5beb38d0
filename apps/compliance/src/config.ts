// The compliance service's configuration: the platform's variables plus the audit log's signing key
// and how often it signs a checkpoint.
import { baseConfigSchema } from '@finance/platform';
import { z } from 'zod';

export const complianceConfigSchema = baseConfigSchema
  .extend({
    /**
     * PEM file of the Ed25519 private key that signs audit checkpoints (PKCS#8). Required in
     * production; elsewhere an ephemeral key is generated at start-up and only its public half logged.
     */
    AUDIT_SIGNING_KEY_FILE: z.string().min(1).optional(),
    /** How often a checkpoint is signed when the log has grown. */
    AUDIT_CHECKPOINT_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
    /** Name of the log in every checkpoint, so a signature for one log never passes for another. */
    AUDIT_LOG_ORIGIN: z
      .string()
      .regex(/^[A-Za-z0-9._/-]{1,128}$/, 'letters, digits, ".", "_", "-" and "/" (at most 128)')
      .default('finance-core/compliance/audit-log'),
    /** Days a month of the audit log stays in the database; older months go to the archive. */
    AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(365),
    /** How often retention looks for months to archive and drop. */
    AUDIT_RETENTION_INTERVAL_MS: z.coerce
      .number()
      .int()
      .min(1_000)
      .max(604_800_000)
      .default(3_600_000),
    /**
     * Directory of the filesystem archive target. Unset in production: retention does not run (a
     * temporary directory would lose the only copy); elsewhere a temporary directory.
     */
    AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
    /**
     * Limits of the pre-trade rules for this deployment, sent to finance.compliance as input.config
     * (decimal strings). Unset: the policy's own (1,000,000 per order, 100 orders per owner per hour).
     */
    COMPLIANCE_MAX_ORDER_NOTIONAL: z
      .string()
      .regex(/^\d{1,30}(\.\d{1,10})?$/, 'must be a decimal')
      .optional(),
    COMPLIANCE_MAX_ORDERS_PER_HOUR: z
      .string()
      .regex(/^\d{1,9}$/, 'must be a whole number')
      .optional(),
    /** How often surveillance evaluates the recent trades and orders for alerts. */
    COMPLIANCE_SURVEILLANCE_INTERVAL_MS: z.coerce
      .number()
      .int()
      .min(100)
      .max(86_400_000)
      .default(60_000),
    /** How far back (minutes) surveillance looks at each run; alerts already raised are not raised again. */
    COMPLIANCE_SURVEILLANCE_WINDOW_MINUTES: z.coerce.number().int().min(1).max(10_080).default(480),
    /** The session close (UTC HH:MM) for the marking-the-close rule; unset: the rule is off. */
    COMPLIANCE_SESSION_CLOSE: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (UTC)')
      .optional(),
  })
  .superRefine(
    (config, ctx) => {
      // An ephemeral key in production would make every checkpoint unverifiable after a restart.
      if (config.NODE_ENV === 'production' && config.AUDIT_SIGNING_KEY_FILE === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['AUDIT_SIGNING_KEY_FILE'],
          message: 'in production',
        });
      }
    },
    { when: () => true },
  );

export type ComplianceConfig = z.infer<typeof complianceConfigSchema>;
