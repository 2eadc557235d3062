/**
 * Figure 4, polling: for operations that take a given time, with and without Retry-After, how
 * many operation GETs the app makes and how late it notices completion, against what the backoff
 * policy allows (src/core/polling.ts with every poll exactly on time). Delays are scaled down
 * (POLL_INITIAL_DELAY_SECONDS=1, the minimum) so it runs in seconds. Each repetition runs every
 * case at once, one app process per case, each on its own queue and currency.
 */
import type { AppOutcome } from '../appProcess';
import { runChild, type ChildRun } from '../child';
import { CURRENCIES, appEnv, withCloud } from '../cloud';
import type { BenchContext } from '../context';
import { idealSchedule, policyDistribution, replay, type PolicyCase, type PolicyDistribution } from '../policy';
import { measurement, type FigureResult, type Measurement } from '../results';
import { median, round } from '../stats';

interface CaseResult {
  readonly policyCase: PolicyCase;
  readonly policy: PolicyDistribution;
  readonly gets: number[];
  readonly noticeDelaySeconds: number[];
  /** What the policy allows for each run's own jitter draws. */
  readonly idealGets: number[];
  readonly idealNoticeDelaySeconds: number[];
  /** When each operation GET came back, seconds after the POST, per repetition. */
  readonly pollTimes: number[][];
}

export async function polling(context: BenchContext): Promise<FigureResult> {
  const started = performance.now();
  const params = context.config.polling;
  const cases: CaseResult[] = [];
  for (const operationSeconds of params.operationSeconds) {
    for (const retryAfterSeconds of params.retryAfterSeconds) {
      const policyCase: PolicyCase = {
        operationSeconds,
        retryAfterSeconds,
        initialDelaySeconds: params.initialDelaySeconds,
        maxDelaySeconds: params.maxDelaySeconds,
      };
      cases.push({
        policyCase,
        policy: policyDistribution(policyCase),
        gets: [],
        noticeDelaySeconds: [],
        idealGets: [],
        idealNoticeDelaySeconds: [],
        pollTimes: [],
      });
    }
  }
  if (cases.length > CURRENCIES.length) throw new Error(`polling: at most ${CURRENCIES.length} cases run at once`);

  const scenarioOf = ({ operationSeconds, retryAfterSeconds }: PolicyCase) => ({
    fileCount: 1,
    rowsPerFile: 1,
    runningPolls: 0,
    notStartedPolls: 0,
    readyAfterSeconds: operationSeconds,
    retryAfterSeconds,
  });
  await withCloud({}, async (cloud) => {
    for (let rep = 0; rep < params.reps; rep++) {
      context.progress(`polling: repetition ${rep + 1}/${params.reps}: ${cases.length} operations of ${params.operationSeconds.join(', ')} s at once`);
      // Every app first loads and creates its clients; only then do the exports start, one by one,
      // each under its own scenario (the emulator fixes an export's scenario when it is POSTed).
      const runs: Array<ChildRun<AppOutcome>> = cases.map((_, index) =>
        runChild<AppOutcome>(context.childFile, {
          kind: 'app',
          env: appEnv(cloud, CURRENCIES[index]!, {
            POLL_INITIAL_DELAY_SECONDS: String(params.initialDelaySeconds),
            POLL_MAX_DELAY_SECONDS: String(params.maxDelaySeconds),
          }),
          currency: CURRENCIES[index]!,
          host: context.host,
          sourceAccount: context.sourceAccount,
          waitForGo: true,
        }),
      );
      await Promise.all(runs.map((run) => run.ready));
      for (const [index, run] of runs.entries()) {
        cloud.billing.setScenario(scenarioOf(cases[index]!.policyCase));
        run.go();
        await run.started;
      }
      const outcomes = await Promise.all(runs.map((run) => run.done));
      outcomes.forEach((outcome, index) => {
        const result = cases[index]!;
        const polls = outcome.operationPolls;
        const success = polls.find((poll) => !['notStarted', 'running'].includes(poll.status));
        if (outcome.state !== 'succeeded' || !success)
          throw new Error(`polling: the run ended ${outcome.state}${outcome.errorCode ? ` (${outcome.errorCode}: ${outcome.errorMessage})` : ''}`);
        result.gets.push(polls.length);
        result.noticeDelaySeconds.push(success.at / 1000 - result.policyCase.operationSeconds);
        const ideal = idealSchedule(result.policyCase, replay(outcome.randomDraws));
        result.idealGets.push(ideal.gets);
        result.idealNoticeDelaySeconds.push(ideal.noticeDelaySeconds);
        result.pollTimes.push(polls.map((poll) => round(poll.at / 1000)));
      });
    }
  });

  const rows: Measurement[] = [];
  for (const result of cases) {
    const { operationSeconds, retryAfterSeconds } = result.policyCase;
    const name = `${operationSeconds} s operation, ${retryAfterSeconds === null ? 'no Retry-After' : `Retry-After ${retryAfterSeconds} s`}`;
    const floorLabel = 'the policy, same jitter draws, polls exactly on time';
    rows.push(measurement(`${name}: operation GETs`, 'count', result.gets, floorLabel, result.idealGets));
    rows.push(measurement(`${name}: completed → noticed`, 's', result.noticeDelaySeconds, floorLabel, result.idealNoticeDelaySeconds));
  }
  return {
    id: 'polling',
    title: 'Polling (scaled down)',
    params: { ...params, host: context.host, policy: "src/core/polling.ts nextPoll replayed with the run's own jitter draws, every poll exactly when due" },
    rows,
    findings: [],
    details: {
      cases: cases.map((result) => ({
        ...result.policyCase,
        policy: result.policy,
        measuredGets: result.gets,
        measuredNoticeDelaySeconds: result.noticeDelaySeconds.map((value) => round(value)),
        pollTimesSeconds: result.pollTimes,
        idealGets: result.idealGets,
        idealNoticeDelaySeconds: result.idealNoticeDelaySeconds,
        overheadSeconds: round(median(result.noticeDelaySeconds.map((delay, index) => delay - result.idealNoticeDelaySeconds[index]!))),
      })),
    },
    durationSeconds: (performance.now() - started) / 1000,
  };
}
