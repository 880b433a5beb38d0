// Maps every error leaving an HTTP handler to an RFC 9457 problem-details response; errors of message
// handlers pass through to their transport.
import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Observable, throwError } from 'rxjs';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  /** Field-level problems of a rejected request body or query. */
  errors?: Array<{ field: string; message: string }>;
  [extension: string]: unknown;
}

/** Throw from a handler to answer with a specific problem document. */
export class ProblemException extends HttpException {
  constructor(
    problem: Omit<ProblemDetails, 'type' | 'status'> & { type?: string; status: number },
  ) {
    super({ type: 'about:blank', ...problem }, problem.status);
  }
}

@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void | Observable<never> {
    // A message handler's error goes back to its transport, which retries or dead-letters it.
    if (host.getType() !== 'http') return throwError(() => exception);
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const problem = this.toProblem(exception);
    problem.instance ??= request.url;
    if (problem.status >= 500) {
      this.logger.error(
        { err: exception, path: request.url, method: request.method },
        'request failed',
      );
    }
    void reply
      .status(problem.status)
      .header('content-type', 'application/problem+json')
      .send(problem);
  }

  private toProblem(exception: unknown): ProblemDetails {
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      if (typeof body === 'object' && body !== null && 'type' in body && 'title' in body) {
        return { ...(body as ProblemDetails), status };
      }
      const message =
        typeof body === 'string'
          ? body
          : ((body as { message?: unknown }).message ?? exception.message);
      return {
        type: 'about:blank',
        title: HttpStatus[status]?.replace(/_/g, ' ').toLowerCase() ?? 'error',
        status,
        detail: Array.isArray(message) ? message.join('; ') : String(message),
      };
    }
    // Fastify's own errors (malformed JSON, body too large) carry a 4xx statusCode.
    const statusCode = (exception as { statusCode?: unknown })?.statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return {
        type: 'about:blank',
        title: HttpStatus[statusCode]?.replace(/_/g, ' ').toLowerCase() ?? 'bad request',
        status: statusCode,
        detail: (exception as Error).message,
      };
    }
    return { type: 'about:blank', title: 'internal server error', status: 500 };
  }
}
