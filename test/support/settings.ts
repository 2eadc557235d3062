/** The smallest environment parseSettings accepts, and the problems it names for an environment. */
import { parseSettings } from '../../src/core/settings';
import { SettingsError } from '../../src/errors';

export const minimal = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  PARTNER_STORAGE: 'DefaultEndpointsProtocol=https;AccountName=partner;AccountKey=a2V5;EndpointSuffix=core.windows.net',
  EXPORT_CURRENCIES: 'EUR',
};

export function problemsOf(env: Record<string, string>): string[] {
  try {
    parseSettings(env);
  } catch (error) {
    if (error instanceof SettingsError) return [...error.problems];
    throw error;
  }
  return [];
}
