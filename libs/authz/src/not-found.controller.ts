// Catches every route no controller serves, so an unknown path is authorized first and a caller
// without rights learns nothing about which routes exist (403 before 404).
import { All, Controller, NotFoundException, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

@Controller()
export class NotFoundController {
  @All('*')
  notFound(@Req() request: FastifyRequest): never {
    throw new NotFoundException(`Cannot ${request.method} ${request.url.split('?', 1)[0]}`);
  }
}
