// Alerts on the app's own run log, sent by e-mail through one action group:
//   1. A run failed, of any kind: the app logs "run failed {json}" at error level. A run that
//      found no data (Graph's 5000: "run noData") or the same data it landed before ("run
//      noNewData") did not fail, and logs at information level.
//   2. A month is missing (dead man's switch): by the deadline day, a configured unbilled kind
//      and currency has no sign that last month's export landed. This also catches the cases
//      that log nothing at all: the timer never fired, the app cannot start, or a run is stuck.
//      An invoice's exports start from its event; one that never lands ends failed (its
//      deadline, or the sweeper's Stalled), which is alert 1.
// The app logs each event as one line: a fixed message, one space, then a JSON object
// (src/telemetry.ts for a run's state changes, src/runLog.ts for the rest). The queries split
// the line at the first " {" and parse_json the rest.
// Application Insights is workspace-based, so the rules query the workspace: table AppTraces,
// columns Message and SeverityLevel.

@description('Region of the alert rules (the workspace\'s region).')
param location string

@description('Tags for the action group and the alert rules.')
param tags object

@description('Resource ID of the Log Analytics workspace that Application Insights writes to.')
param logAnalyticsWorkspaceId string

@description('Name of the action group.')
param actionGroupName string

@description('Name of the "a run failed" alert rule.')
param runFailedAlertName string

@description('Name of the "a month is missing" alert rule.')
param missingMonthAlertName string

@description('E-mail address that receives the alerts.')
param alertEmailAddress string

@description('ISO 4217 codes the app exports (EXPORT_CURRENCIES), upper case. The dead man\'s switch expects each one.')
param expectedCurrencies array

@description('The unbilled kinds the timer starts (EXPORT_KINDS), lower case. The dead man\'s switch expects each one per currency.')
param expectedKinds array

@minValue(2)
@maxValue(28)
@description('Day of the month (UTC) by which last month must have landed. The check runs in the first three hours of this day and looks at the two days before it.')
param deadlineDayOfMonth int

@description('Deploy the dead man\'s switch. It checks the closed month, so it only makes sense when EXPORT_BILLING_PERIOD is "last".')
param deployMissingMonthAlert bool

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'BillingExp' // at most 12 characters; shown in the e-mail
    enabled: true
    emailReceivers: [
      {
        name: 'billing-export-operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

// 1. A run failed. failRun (src/functions/runSteps.ts) reports it through the app's telemetry,
//    which logs
//      run failed {"runId":"…","kind":"unbilled-usage","billingMonth":"2026-10","currency":"EUR","errorCode":"…","reason":"…",…}
//      run failed {"runId":"…","kind":"billed-usage","invoiceId":"G016907411","errorCode":"…","reason":"…",…}
//    at error level. It goes to Application Insights with error severity, or, without a
//    connection string, through context.error; either way AppTraces stores SeverityLevel 3.
//    The rule runs every 15 minutes. It keeps the lines ingested in the last 15 minutes, not the
//    lines timestamped then, so it alerts on each failure exactly once, even when a line arrives
//    late. One alert per run: the dimensions name it.
var runFailedQuery = '''
AppTraces
| where SeverityLevel == 3 and Message startswith "run failed {"
| where ingestion_time() > ago(15m)
| extend Run = parse_json(substring(Message, indexof(Message, " {") + 1))
| project TimeGenerated,
          RunId = tostring(Run.runId),
          Kind = tostring(Run.kind),
          // An invoice for billed kinds, month and currency for unbilled ones: never empty.
          Subject = iff(isempty(tostring(Run.invoiceId)), strcat(tostring(Run.billingMonth), " ", tostring(Run.currency)), strcat("invoice ", tostring(Run.invoiceId))),
          BillingMonth = tostring(Run.billingMonth),
          Currency = tostring(Run.currency),
          InvoiceId = tostring(Run.invoiceId),
          ErrorCode = tostring(Run.errorCode),
          Reason = tostring(Run.reason)
'''

// Each combination of these columns is its own alert, named in the e-mail.
var runFailedDimensions = [
  'RunId'
  'Kind'
  'Subject'
  'ErrorCode'
]

resource runFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: runFailedAlertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Partner billing export: a run failed'
    description: 'An export run failed: Graph refused or failed the export (an unknown or too old invoice among them), the export passed EXPORT_DEADLINE_SECONDS, or the files could not be copied. The dimensions name the run, kind, month and currency or invoice, and error code; "npm run -s cli -- status" or the BillingExportRuns table gives the reason. The next scheduled firing retries an unbilled month; an invoice is retried with "start --kind K --invoice ID" or a backfill. No data (Graph 5000) and no new data are not failures.'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    // AppTraces appears in a new workspace with the first telemetry, after this deployment.
    skipQueryValidation: true
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: runFailedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [for dimension in runFailedDimensions: {
            name: dimension
            operator: 'Include'
            values: [
              '*'
            ]
          }]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// 2. A month is missing (dead man's switch). A log search alert can look back at most two
//    days, so the rule cannot search the whole month for a success. Instead it checks early on
//    the deadline day (UTC) for evidence, from the two days before, that last month has
//    landed, per unbilled kind of EXPORT_KINDS and currency. Any of three lines counts:
//      run succeeded {"kind":"unbilled-usage","billingMonth":"2026-10","currency":"EUR",…}
//          a run landed the month (src/steps/landExport.ts)
//      run noNewData {"kind":"unbilled-usage","billingMonth":"2026-10","currency":"EUR",…}
//          a run found the month's data already landed, unchanged
//      export not started {"key":"unbilled-usage|2026-10|EUR|full","reason":"run … already landed this month at …"}
//          a scheduled firing found the month already landed (src/functions/startExport.ts)
//    A month Graph has no data for (noData) is not evidence: it alerts, since a partner with a
//    configured currency and kind expects data for it.
//    So the timer must fire on at least one of the two days before the deadline day, after
//    03:00 UTC (or at any time on the day before). The defaults do this: the timer fires at
//    06:00 on the 3rd to the 5th, the deadline is the 7th, and the rule sees the 5th and 6th.
//    Each configured currency with no evidence is one alert.
//    The rule runs hourly so that the check happens at a known time of day. It checks in each
//    of the first three hours of the deadline day, so one late or skipped evaluation does not
//    skip a month, and it mutes its actions for a day after it fires, so that is one e-mail.
var missingMonthQuery = replace(replace(replace('''
let ExpectedCurrencies = dynamic(__EXPECTED_CURRENCIES__);
let ExpectedKinds = dynamic(__EXPECTED_KINDS__);
let DeadlineDay = __DEADLINE_DAY__;
let IsCheckTime = dayofmonth(now()) == DeadlineDay and now() - startofday(now()) < 3h;
let LastMonth = format_datetime(datetime_add("month", -1, startofmonth(now())), "yyyy-MM");
let LandedCurrencies = AppTraces
    | where TimeGenerated > ago(2d)
    | where Message startswith "run succeeded {" or Message startswith "run noNewData {" or Message startswith "export not started {"
    | extend Event = substring(Message, 0, indexof(Message, " {")),
             Fields = parse_json(substring(Message, indexof(Message, " {") + 1))
    // "export not started" names the export by its key: {kind}|YYYY-MM|CURRENCY|attributeSet
    // (a billed kind's key, {kind}|{invoiceId}|attributeSet, is not an expected kind)
    | extend Key = split(tostring(Fields.key), "|"),
             RunEnded = Event != "export not started"
    | extend Kind = iff(RunEnded, tostring(Fields.kind), tostring(Key[0])),
             Month = iff(RunEnded, tostring(Fields.billingMonth), tostring(Key[1])),
             Currency = toupper(iff(RunEnded, tostring(Fields.currency), tostring(Key[2])))
    | where RunEnded or tostring(Fields.reason) contains "already landed"
    | where Month == LastMonth
    | distinct Kind, Currency;
print Kind = ExpectedKinds
| mv-expand Kind to typeof(string)
| extend Currency = ExpectedCurrencies
| mv-expand Currency to typeof(string)
| where IsCheckTime
| join kind=leftanti LandedCurrencies on Kind, Currency
| project Kind,
          BillingMonth = LastMonth,
          Currency,
          Problem = strcat("No sign that the ", LastMonth, " ", Kind, " export in ", Currency, " landed by day ", DeadlineDay)
''', '__EXPECTED_CURRENCIES__', string(expectedCurrencies)), '__DEADLINE_DAY__', string(deadlineDayOfMonth)), '__EXPECTED_KINDS__', string(expectedKinds))

var missingMonthDimensions = [
  'Kind'
  'BillingMonth'
  'Currency'
]

resource missingMonthAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (deployMissingMonthAlert) {
  name: missingMonthAlertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Partner billing export: last month has not landed'
    description: 'Dead man\'s switch: by day ${deadlineDayOfMonth} (UTC), the app has logged no sign that last month\'s export of this unbilled kind landed for this currency. Either every attempt failed (see the "a run failed" alerts), or the timer did not fire, or the app did not start (check its logs in Application Insights), or a run is stuck. "npm run -s cli -- status --month YYYY-MM" shows the ledger. "start --force" exports the month by hand while Graph still has it as unbilled.'
    severity: 1
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    // The query reads two days of logs: the most a log search alert may read.
    overrideQueryTimeRange: 'P2D'
    skipQueryValidation: true
    // One alert per check; the rule fires again only in a later month.
    autoMitigate: false
    muteActionsDuration: 'P1D'
    criteria: {
      allOf: [
        {
          query: missingMonthQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [for dimension in missingMonthDimensions: {
            name: dimension
            operator: 'Include'
            values: [
              '*'
            ]
          }]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

@description('Resource ID of the action group.')
output actionGroupId string = actionGroup.id
