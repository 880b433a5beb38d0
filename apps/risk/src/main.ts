import 'reflect-metadata';
import { runService } from '@finance/platform';
import { riskService } from './service';

void runService(riskService);
