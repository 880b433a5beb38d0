// GET /docs: the OpenAPI document of this service.
import { Controller, Get } from '@nestjs/common';
import { tradingOpenApi } from './openapi';

@Controller('docs')
export class DocsController {
  private readonly document = tradingOpenApi();

  @Get()
  get(): Record<string, unknown> {
    return this.document;
  }
}
