/**
 * The Alerts panel (docs/contract.md, "Alerts (v2)"): the alert rules (an admin may create and delete them; a viewer
 * sees them without those controls, and the API refuses them anyway), the alerts firing now and the recent
 * transitions. History from `GET /api/alerts` (the last 24 h), then live from the socket's `alert` events, which the
 * API sends once per transition id; a transition seen twice (REST and live) is kept once too.
 */
import type { AlertRule, AlertTransition } from '@fleetpulse/contracts';
import type { AlertRuleView, SessionInfo } from '@fleetpulse/dashboard-api/wire';
import { ApiError, createRule, deleteRule, fetchAlertHistory, fetchRules } from './api';

/** Transitions a load reads at most (the last 24 h, newest first). */
const LoadMax = 5000;
/** Transitions listed at most (newest first). */
const RecentMax = 100;
/** Ids of transitions seen, for de-duplication: at most this many. */
const SeenMax = 10_000;

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
};

const field = (label: string, input: HTMLElement) => el('label', {}, label, input);

/** `temp.max > 80 for 2 windows` / `anomaly (iforest)`. */
export function describeCondition(when: AlertRule['when']): string {
  if ('anomaly' in when) return `anomaly${when.anomaly.model ? ` (${when.anomaly.model})` : ' (any model)'}`;
  return `${when.feature} ${when.op} ${when.value}${when.forWindows > 1 ? ` for ${when.forWindows} windows` : ''}`;
}

export class AlertsView {
  private readonly isAdmin: boolean;
  private readonly rulesBody: HTMLTableSectionElement;
  private readonly firingList: HTMLUListElement;
  private readonly recentList: HTMLOListElement;
  private readonly form: HTMLFormElement;
  private readonly formError: HTMLElement;
  private readonly status: HTMLElement;
  /** The latest transition of each rule and device. */
  private readonly latest = new Map<string, AlertTransition>();
  private readonly seen = new Set<string>();
  private readonly recent: AlertTransition[] = [];
  private pending = false;

  constructor(
    private readonly root: HTMLElement,
    who: SessionInfo,
    private readonly openDevice: (deviceId: string) => void,
    /** Gets the transitions each load read (oldest first): the fleet grid's alerting state, the device's markers. */
    private readonly loaded: (transitions: AlertTransition[]) => void = () => undefined,
  ) {
    this.isAdmin = who.role === 'admin';
    this.status = el('span', { class: 'muted', id: 'alerts-status' });
    this.firingList = el('ul', { id: 'alerts-firing', class: 'feed' });
    this.recentList = el('ol', { id: 'alert-transitions', class: 'feed' });
    this.rulesBody = el('tbody');
    this.formError = el('p', { id: 'rule-error', class: 'error', role: 'alert' });
    this.form = this.buildForm();
    this.form.hidden = !this.isAdmin;
    const rules = el(
      'table',
      { id: 'alert-rules' },
      el('thead', {}, el('tr', {}, ...['rule', 'devices', 'condition', ''].map((h) => el('th', {}, h)))),
      this.rulesBody,
    );
    root.replaceChildren(
      el('div', { class: 'panel-head' }, el('h2', {}, 'Alerts'), this.status),
      el('h3', {}, 'Firing'),
      this.firingList,
      el('h3', {}, 'Recent transitions'),
      this.recentList,
      el('h3', {}, 'Rules'),
      rules,
      this.form,
      this.formError,
    );
  }

  /**
   * Rules and the last day's transitions, from REST (again after a reconnect: what was missed meanwhile), pages
   * followed up to LoadMax transitions: the alerts firing when the page opens show at once, not only once live.
   */
  async load(): Promise<void> {
    try {
      const [rules, transitions] = await Promise.all([fetchRules(), fetchAlertHistory({}, LoadMax)]);
      this.showRules(rules);
      // Oldest first, so each rule and device ends with its latest.
      const oldestFirst = [...transitions].sort((a, b) => a.windowStart - b.windowStart || a.at - b.at);
      for (const t of oldestFirst) this.add(t);
      this.loaded(oldestFirst);
      this.status.textContent = '';
    } catch (e) {
      this.status.textContent = `cannot load alerts: ${e instanceof Error ? e.message : String(e)}`;
    }
    this.render();
  }

  /** A live `alert` event. */
  alert(t: AlertTransition): void {
    this.add(t);
    this.render();
  }

  private add(t: AlertTransition): void {
    if (this.seen.has(t.id)) return;
    this.seen.add(t.id);
    if (this.seen.size > SeenMax) this.seen.delete(this.seen.values().next().value as string);
    const key = `${t.ruleId}|${t.deviceId}`;
    const before = this.latest.get(key);
    // A transition of an older window (a late REST answer) never replaces a newer one.
    if (
      !before ||
      t.windowStart > before.windowStart ||
      (t.windowStart === before.windowStart && t.state === 'resolved')
    )
      this.latest.set(key, t);
    this.recent.push(t);
    this.recent.sort((a, b) => b.windowStart - a.windowStart || b.at - a.at);
    this.recent.length = Math.min(this.recent.length, RecentMax);
  }

  /** Redrawn once a frame at most, however many transitions arrive. */
  private render(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const firing = [...this.latest.values()]
        .filter((t) => t.state === 'firing')
        .sort((a, b) => b.windowStart - a.windowStart);
      this.firingList.replaceChildren(
        ...(firing.length === 0 ? [el('li', { class: 'muted' }, 'none')] : firing.map((t) => this.item(t, 'li'))),
      );
      this.recentList.replaceChildren(...this.recent.map((t) => this.item(t, 'li')));
    });
  }

  private item(t: AlertTransition, tag: 'li'): HTMLElement {
    const li = el(tag, {
      'data-id': t.id,
      'data-rule': t.ruleId,
      'data-device': t.deviceId,
      'data-state': t.state,
      class: `alert-${t.state}`,
    });
    const value = t.value === null ? '' : ` · ${Number.isInteger(t.value) ? t.value : t.value.toFixed(2)}`;
    const why = t.reason === 'rule-deleted' ? ' (rule deleted)' : '';
    li.append(
      el('time', {}, new Date(t.windowStart).toLocaleTimeString()),
      ' ',
      el('b', {}, t.deviceId),
      ' ',
      el('span', {}, `${t.state} · ${t.ruleName} · ${t.resolution}${value}${why}`),
    );
    li.title = `episode from ${new Date(t.episode).toLocaleString()}`;
    li.addEventListener('click', () => this.openDevice(t.deviceId));
    return li;
  }

  private showRules(rules: AlertRuleView[]): void {
    this.rulesBody.replaceChildren(
      ...rules.map((r) => {
        const tr = el('tr', { 'data-rule-id': r.id, 'data-name': r.name });
        tr.append(
          el('td', {}, r.name),
          el('td', {}, r.devices),
          el('td', {}, `${describeCondition(r.when)} · ${r.resolution}`),
        );
        const cell = el('td');
        if (this.isAdmin) {
          const del = el('button', { type: 'button', class: 'rule-delete' }, 'Delete');
          del.addEventListener('click', () => void this.remove(r));
          cell.append(del);
        }
        tr.append(cell);
        if (r.webhook) tr.title = `webhook: ${r.webhook}`;
        return tr;
      }),
    );
  }

  private async remove(r: AlertRuleView): Promise<void> {
    if (!confirm(`Delete the alert rule "${r.name}"? Its open alerts resolve.`)) return;
    this.formError.textContent = '';
    try {
      await deleteRule(r.id);
    } catch (e) {
      this.formError.textContent = e instanceof Error ? e.message : String(e);
    }
    this.showRules(await fetchRules().catch(() => []));
  }

  private buildForm(): HTMLFormElement {
    const input = (id: string, attrs: Record<string, string> = {}) => el('input', { id, ...attrs });
    const select = (id: string, options: string[]) => {
      const s = el('select', { id });
      s.append(...options.map((o) => new Option(o, o)));
      return s;
    };
    const kind = select('rule-kind', ['threshold', 'anomaly']);
    const threshold = el(
      'span',
      { class: 'rule-threshold' },
      field('feature', input('rule-feature', { placeholder: 'temp.max' })),
      field('op', select('rule-op', ['>', '>=', '<', '<='])),
      field('value', input('rule-value', { type: 'number', step: 'any' })),
      field('for windows', input('rule-for', { type: 'number', min: '1', value: '1' })),
    );
    const anomaly = el(
      'span',
      { class: 'rule-anomaly' },
      field('model', input('rule-model', { placeholder: 'any model' })),
    );
    anomaly.hidden = true;
    kind.addEventListener('change', () => {
      threshold.hidden = kind.value !== 'threshold';
      anomaly.hidden = kind.value !== 'anomaly';
    });
    const form = el(
      'form',
      { id: 'rule-form', class: 'rule-form', novalidate: '' },
      el('h3', {}, 'New rule'),
      field('name', input('rule-name', { placeholder: 'overheat' })),
      field('devices', input('rule-devices', { placeholder: 'sensor-*' })),
      field('resolution', input('rule-resolution', { value: '10s' })),
      field('when', kind),
      threshold,
      anomaly,
      field('webhook', input('rule-webhook', { type: 'url', placeholder: 'https://ops.example/hooks/fleet' })),
      el('button', { type: 'submit' }, 'Create rule'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.create();
    });
    return form;
  }

  private async create(): Promise<void> {
    const v = (id: string) => (this.form.querySelector(`#${id}`) as HTMLInputElement).value.trim();
    // Sent as typed (numbers as numbers when they parse): the API names every bad field.
    const num = (s: string): number | string => (s !== '' && Number.isFinite(Number(s)) ? Number(s) : s);
    const when =
      v('rule-kind') === 'anomaly'
        ? { anomaly: v('rule-model') === '' ? {} : { model: v('rule-model') } }
        : {
            feature: v('rule-feature'),
            op: v('rule-op'),
            value: num(v('rule-value')),
            forWindows: v('rule-for') === '' ? 1 : num(v('rule-for')),
          };
    const rule = {
      name: v('rule-name'),
      devices: v('rule-devices'),
      resolution: v('rule-resolution'),
      when,
      webhook: v('rule-webhook'),
    } as Omit<AlertRule, 'id' | 'createdAt'>;
    this.formError.replaceChildren();
    try {
      const created = await createRule(rule);
      this.form.reset();
      this.form.querySelector<HTMLSelectElement>('#rule-kind')!.dispatchEvent(new Event('change'));
      this.formError.dataset.created = created.id;
      this.showRules(await fetchRules());
    } catch (e) {
      const errors = e instanceof ApiError ? e.errors : [e instanceof Error ? e.message : String(e)];
      this.formError.replaceChildren(...errors.map((m) => el('span', {}, m)));
    }
  }
}
