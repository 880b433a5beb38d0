import 'reflect-metadata';
import { runService } from '@finance/platform';
import { tradingService } from './service';

void runService(tradingService);
