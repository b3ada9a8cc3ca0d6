/** The producer room: enqueue jobs with confirm from any process (your server, the API). */
export { EnqueueError, type EnqueueErrorCode, enqueueErrorOf, JobValidationError } from './errors.ts';
export {
  type CreateProducerOptions,
  createProducer,
  type EnqueueOptions,
  type JobRef,
  Producer,
  type ProducerSettings,
  ProducerStartError,
  requestIdForKey,
} from './producer.ts';
