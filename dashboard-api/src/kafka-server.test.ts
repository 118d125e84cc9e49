import { ServerKafka } from '@nestjs/microservices';
import { TopicRoutedKafkaServer } from './kafka-server';

// The route of every kind of pattern is Nest's own; only topic names skip the JSON.parse that throws for them.
class Probe extends TopicRoutedKafkaServer {
  route(pattern: string): string {
    return this.getRouteFromPattern(pattern);
  }
}
class NestProbe extends ServerKafka {
  route(pattern: string): string {
    return this.getRouteFromPattern(pattern);
  }
}

describe('TopicRoutedKafkaServer', () => {
  const ours = new Probe({});
  const nest = new NestProbe({});

  it.each([
    'metrics.live',
    'metrics.aggregates',
    'anomaly.scores',
    'alerts',
    'a_b-c.d',
    '{"cmd":"sum"}',
    '["a"]',
    '"quoted"',
    '123',
    'true',
    'null',
    '.x',
    '',
  ])('routes %j as Nest does', (pattern) => {
    expect(ours.route(pattern)).toBe(nest.route(pattern));
  });

  it('does not parse a topic name as JSON (Nest throws and catches a SyntaxError for each)', () => {
    const parse = jest.spyOn(JSON, 'parse');
    try {
      ours.route('metrics.live');
      expect(parse).not.toHaveBeenCalled();
      nest.route('metrics.live');
      expect(parse).toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });
});
