import 'reflect-metadata';
import { runService } from '@finance/platform';
import { settlementService } from './service';

void runService(settlementService);
