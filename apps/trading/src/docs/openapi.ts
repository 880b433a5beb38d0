// The trading API as an OpenAPI 3.1 document, built from the same zod schemas that validate requests,
// so the document cannot drift from what the service accepts.
import { z } from 'zod';
import { openAccountBody, transferBody } from '../accounts/accounts.controller';
import { listOrdersQuery, placeOrderBody, replaceOrderBody } from '../orders/orders.service';

const json = (schema: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
  });
  return { 'application/json': { schema: rest } };
};

const problem = (description: string) => ({
  description: `${description} (RFC 9457 problem details; \`errors\` names each field at fault)`,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

const ok = (description: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
});

const idParam = (name: string) => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
});

function queryParameters(schema: z.ZodObject) {
  const shape = z.toJSONSchema(schema, { io: 'input' }) as {
    properties: Record<string, object>;
    required?: string[];
  };
  return Object.entries(shape.properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: shape.required?.includes(name) ?? false,
    schema: s,
  }));
}

export function tradingOpenApi(): Record<string, unknown> {
  const common = {
    '400': problem('invalid input'),
    '403': problem('the caller may not do this'),
    '503': problem('authorization unavailable'),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Trading service',
      version: '1',
      description:
        'Accounts, orders and market data. Every caller authenticates with mutual TLS (a SPIFFE id); ' +
        'amounts and prices are decimal strings in the instrument currency, quantities whole shares.',
    },
    paths: {
      '/trading/accounts': {
        post: {
          summary: 'Open an account (opening it again for the same owner answers the existing one)',
          requestBody: { required: true, content: json(openAccountBody) },
          responses: {
            '201': ok('opened'),
            '200': ok('already open'),
            '409': problem('open for another owner'),
            ...common,
          },
        },
      },
      '/trading/accounts/{id}': {
        get: {
          summary:
            'Cash per currency and holdings per symbol: available, frozen, pending settlement',
          parameters: [idParam('id')],
          responses: { '200': ok('the account'), '404': problem('unknown account'), ...common },
        },
      },
      '/trading/accounts/{id}/deposits': {
        post: {
          summary: 'Deposit cash or shares; idempotent by requestId',
          parameters: [idParam('id')],
          requestBody: { required: true, content: json(transferBody) },
          responses: {
            '201': ok('deposited'),
            '200': ok('a repeated request'),
            '404': problem('unknown account'),
            '409': problem('requestId reused for another transfer'),
            '422': problem('unknown symbol or bad amount'),
            ...common,
          },
        },
      },
      '/trading/accounts/{id}/withdrawals': {
        post: {
          summary: 'Withdraw cash or shares; idempotent by requestId',
          parameters: [idParam('id')],
          requestBody: { required: true, content: json(transferBody) },
          responses: {
            '201': ok('withdrawn'),
            '200': ok('a repeated request'),
            '404': problem('unknown account'),
            '409': problem('requestId reused'),
            '422': problem('more than available'),
            ...common,
          },
        },
      },
      '/trading/orders': {
        post: {
          summary:
            'Place an order: reserved in trading, risk and settlement (one TCC), then booked and matched',
          requestBody: { required: true, content: json(placeOrderBody) },
          responses: {
            '201': ok(
              'accepted (with any immediate fills) or REJECTED with the refusing branch and reason',
            ),
            '200': ok('a retry with the same clientOrderId: the first order'),
            '202': ok('no answer within the response timeout; poll the Location'),
            '409': problem('clientOrderId reused for a different order'),
            '422': problem(
              'unknown account or symbol, price off the tick, quantity off the lot, no liquidity for MARKET',
            ),
            ...common,
          },
        },
        get: {
          summary: "An account's orders, newest first, paged by cursor",
          parameters: queryParameters(listOrdersQuery),
          responses: { '200': ok('orders and nextCursor'), ...common },
        },
      },
      '/trading/orders/{id}': {
        get: {
          summary: 'One order with its fills',
          parameters: [idParam('id')],
          responses: { '200': ok('the order'), '404': problem('unknown order'), ...common },
        },
        patch: {
          summary:
            'Cancel/replace a resting LIMIT order: new price and/or total quantity, within what it reserved; time priority is kept only when the price is unchanged and the quantity does not go up',
          parameters: [idParam('id')],
          requestBody: { required: true, content: json(replaceOrderBody) },
          responses: {
            '200': ok('replaced (and any fills it caused)'),
            '202': ok('queued; poll the order'),
            '404': problem('unknown order'),
            '409': problem('not resting, or needs more than the order reserved'),
            '422': problem(
              'price off the tick, quantity off the lot or not above the filled quantity',
            ),
            ...common,
          },
        },
        delete: {
          summary: 'Cancel the remaining quantity and release its reservations',
          parameters: [idParam('id')],
          responses: {
            '200': ok('cancelled'),
            '202': ok('cancel queued; poll the order'),
            '404': problem('unknown order'),
            '409': problem('filled, already cancelled or rejected, or still being placed'),
            ...common,
          },
        },
      },
      '/trading/market/{symbol}': {
        get: {
          summary: 'Best bid and ask, last price, volume and trades of the day',
          parameters: [{ name: 'symbol', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': ok('quote'), '404': problem('unknown symbol'), ...common },
        },
      },
      '/trading/market/{symbol}/depth': {
        get: {
          summary: 'Price levels of both sides (L2)',
          parameters: [
            { name: 'symbol', in: 'path', required: true, schema: { type: 'string' } },
            {
              name: 'levels',
              in: 'query',
              required: false,
              schema: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
            },
          ],
          responses: { '200': ok('depth'), '404': problem('unknown symbol'), ...common },
        },
      },
    },
    components: {
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            instance: { type: 'string' },
            errors: {
              type: 'array',
              items: {
                type: 'object',
                properties: { field: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  };
}
