//! One contract suite, two adapters: every case runs against the in-memory store and against
//! DynamoDB Local (a fresh table per test, at `DYNAMODB_ENDPOINT`). A missing DynamoDB Local
//! fails the DynamoDB half loudly; nothing is skipped.

mod cases;
mod figures;
mod harness;
mod smoke;

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::cases::$case(crate::harness::memory_store()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let store = crate::harness::dynamo_store().await;
                    crate::cases::$case(store.clone()).await;
                    // Only after a pass: a failed test leaves its table to inspect.
                    crate::harness::drop_table(&store).await;
                }
            )*
        }
    };
}

contract!(
    // the port
    a_conditional_put_fails_once_the_item_exists,
    a_transaction_with_one_failing_condition_writes_nothing,
    an_expired_record_may_be_replaced_but_a_live_one_not,
    version_conditions_guard_purchase_changes,
    queries_order_limit_and_resume,
    the_index_finds_items_by_deadline,
    // purchases and payments
    a_paid_purchase_is_credited_as_one_lot_refundable_until_local_day_d_plus_15,
    a_purchase_honours_the_quoted_price,
    a_purchase_from_an_expired_quote_is_rejected,
    another_users_quote_or_an_unknown_one_is_not_found,
    the_same_purchase_key_returns_the_first_purchase,
    a_key_reused_for_another_request_is_rejected,
    a_key_is_free_again_once_its_record_expired,
    a_payment_from_another_country_is_returned_and_credits_nothing,
    a_payment_of_another_amount_or_currency_is_returned,
    a_declined_payment_retried_on_the_same_intent_is_credited,
    a_success_after_a_decline_and_the_window_is_returned,
    a_payment_after_the_purchase_expired_is_returned,
    a_redelivered_event_or_a_second_event_credits_nothing_more,
    a_second_payment_for_a_paid_purchase_is_returned_and_the_purchase_kept,
    a_payment_for_an_unknown_purchase_is_returned,
    a_purchase_is_paired_with_one_payment,
    a_users_purchases_are_listed_newest_first_by_page,
    // what the stream's consumers still owe
    what_the_consumers_owe_is_listed_by_age_until_it_is_done,
    a_gift_entry_never_expires_before_it_is_counted,
    the_earnings_sweep_counts_the_gifts_its_stream_left_past_the_threshold,
    // gifts
    a_gift_debits_the_sender_and_credits_the_creators_diamonds,
    gifts_spend_non_refundable_coins_then_the_oldest_lot_first,
    a_gift_above_the_balance_is_rejected,
    a_gift_to_oneself_is_rejected,
    a_gift_to_someone_not_enrolled_is_rejected,
    the_daily_limit_stops_gifts_until_the_next_local_day,
    a_raised_limit_applies_only_after_24_hours,
    the_same_gift_key_returns_the_first_gift_and_debits_once,
    enrolling_twice_reports_already_enrolled,
    // the creator's side
    a_gift_writes_only_the_senders_side_and_the_stream_credits_the_creator_once,
    a_gift_entry_redelivered_reordered_or_regrouped_counts_once,
    a_count_that_stopped_midway_is_finished_by_a_later_one,
    a_gift_entry_twice_in_one_batch_counts_once,
    a_hundred_senders_gift_one_creator_at_once_without_a_conflict,
    gifts_received_run_newest_first_across_the_feed_partitions,
    payouts_keep_to_the_minimum_the_daily_maximum_and_the_account,
    payouts_racing_gifts_and_each_other_never_overdraw,
    a_failed_payout_returns_its_diamonds_exactly_once,
    liabilities_are_what_the_ledger_owes_coins_and_diamonds,
    // refunds
    a_refund_inside_the_window_reverses_the_coins_and_queues_the_money,
    a_refund_after_the_window_is_rejected,
    a_second_refund_is_rejected,
    a_refund_after_spending_any_of_the_coins_is_rejected,
    another_users_purchase_is_not_found,
    an_unpaid_purchase_cannot_be_refunded,
    an_admin_refunds_any_users_purchase_outside_the_window,
    an_admin_refunds_a_lot_that_closed_untouched,
    an_admin_cannot_refund_a_closed_lot_whose_coins_were_spent_since,
    an_admin_refund_records_the_admin,
    a_refund_with_an_idempotency_key_happens_once,
    // refund dispatch
    one_dispatcher_at_a_time_sends_an_instruction,
    a_lapsed_claim_is_taken_over_and_its_late_outcome_ignored,
    an_unanswered_send_stays_pending_and_a_refusal_fails_at_once,
    // reversals and debt
    a_reversal_after_gifting_leaves_debt_that_blocks_gifts_until_repaid,
    a_dispute_won_gives_the_coins_back_once,
    a_dispute_before_the_payment_credits_nothing_until_it_is_won,
    a_fraud_warning_refunds_a_purchase_whose_coins_are_unspent,
    a_fraud_warning_on_spent_coins_restricts_the_account_and_reverses,
    a_reversal_of_a_lot_spent_to_its_last_coin_takes_the_lot_too,
    a_purchase_credited_by_a_won_dispute_is_refused_a_refund,
    two_reversals_in_90_days_restrict_the_account_until_an_admin_lifts_it,
    the_daily_limit_counts_in_the_zone_the_wallet_was_opened_in,
    // app stores
    a_store_transaction_is_credited_once_and_to_one_account,
    concurrent_credits_of_one_store_transaction_credit_once,
    a_partial_store_refund_takes_back_its_share_once,
    a_store_refund_before_the_credit_refuses_it_until_the_store_reverses_it,
    a_store_refund_racing_its_credit_either_refuses_it_or_finds_it_credited,
    after_the_credit_the_stores_latest_word_wins_whatever_order_they_arrive_in,
    // lot closure
    a_lot_is_never_closed_early_and_closes_exactly_once,
    the_marker_expires_at_the_deadline_and_names_its_lot,
    the_sweep_closes_due_lots_of_every_user_and_leaves_the_rest,
    refundability_follows_the_rules_even_before_closure_runs,
    // reads
    history_pages_run_newest_first_with_a_cursor,
    a_new_user_has_an_empty_wallet,
    // concurrency
    fifty_concurrent_gifts_succeed_exactly_as_far_as_the_balance_goes,
    one_payment_event_delivered_twenty_times_at_once_credits_one_lot,
    a_refund_racing_gifts_from_the_same_lot_has_exactly_one_winning_side,
    one_idempotency_key_used_concurrently_has_one_effect,
    one_purchase_key_used_concurrently_creates_one_purchase,
    // faults
    a_gift_whose_response_was_lost_is_applied_once,
    a_client_retry_after_a_lost_response_has_one_effect,
    a_commit_failing_before_it_applied_is_retried_once,
    conflicts_and_throttling_are_retried_with_backoff,
    retries_are_bounded_and_leave_nothing_behind,
    a_refund_whose_response_was_lost_still_reports_the_refund,
    a_payment_whose_response_was_lost_credits_once,
    a_delivery_that_read_before_its_twin_committed_reports_a_replay,
);
