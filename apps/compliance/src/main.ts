import 'reflect-metadata';
import { runService } from '@finance/platform';
import { complianceService } from './service';

void runService(complianceService);
