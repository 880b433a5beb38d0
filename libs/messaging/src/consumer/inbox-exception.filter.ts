// Nest RPC filter that passes a handler's own error through so the transport can classify it.
import { ArgumentsHost, Catch, RpcExceptionFilter } from '@nestjs/common';
import { Observable, throwError } from 'rxjs';

@Catch()
export class InboxExceptionFilter implements RpcExceptionFilter<unknown, never> {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}
