"""The xtquant functions the shim keeps by name and signature but cannot serve, from one table.

Scripts written for xtquant import and introspect these names, so each one exists with
xtquant 250807's parameters (``inspect.signature`` matches the reference; the parity tests check
it). Called, each refuses with ``Unsupported`` after checking its arguments as Python would.
The tables hold one signature a line, without annotations.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable
from typing import Any, Final, NoReturn

_DOC: Final = "Not available on qmtkit backends: raises ``Unsupported``."

#: ``xtdata`` functions (module level).
XTDATA: Final = """
get_market_data3(*args, **kwargs)
subscribe_callback_wrapper(callback)
subscribe_callback_wrapper_1820(callback)
subscribe_callback_wrapper_convert(callback, metaid)
get_field_list(metaid)
create_array(shape, dtype_tuple, capsule, size)
get_index_weight(index_code)
get_financial_data_ori(stock_list, table_list=[], start_time='', end_time='',
    report_type='report_time')
get_market_data_ori(field_list=[], stock_list=[], period='1d', start_time='', end_time='',
    count=-1, dividend_type='none', fill_data=True, enable_read_from_server=True, data_dir=None)
get_market_data_ex_ori(field_list=[], stock_list=[], period='1d', start_time='', end_time='',
    count=-1, dividend_type='none', fill_data=True, enable_read_from_server=True, data_dir=None)
get_l2_quote(field_list=[], stock_code='', start_time='', end_time='', count=-1)
get_l2_order(field_list=[], stock_code='', start_time='', end_time='', count=-1)
get_l2_transaction(field_list=[], stock_code='', start_time='', end_time='', count=-1)
getDividFactors(stock_code, date)
get_main_contract(code_market, start_time='', end_time='')
get_sec_main_contract(code_market, start_time='', end_time='')
subscribe_l2thousand(stock_code, gear_num=None, callback=None)
subscribe_l2thousand_queue(stock_code, callback=None, gear_num=None, price=None)
get_l2thousand_queue(stock_code, gear_num=None, price=None)
get_transactioncount(code_list)
get_fullspeed_orderbook(code_list)
create_sector_folder(parent_node, folder_name, overwrite=True)
create_sector(parent_node, sector_name, overwrite=True)
get_sector_info(sector_name='')
add_sector(sector_name, stock_list)
remove_stock_from_sector(sector_name, stock_list)
remove_sector(sector_name)
reset_sector(sector_name, stock_list)
download_index_weight()
download_history_contracts(incrementally=True)
is_stock_type(stock, tag)
download_cb_data()
get_cb_info(stockcode)
get_option_detail_data(optioncode)
get_option_undl_data(undl_code_ref)
get_option_list(undl_code, dedate, opttype='', isavailavle=False)
get_his_option_list(undl_code, dedate)
get_his_option_list_batch(undl_code, start_time='', end_time='')
get_ipo_info(start_time='', end_time='')
get_markets()
get_wp_market_list()
get_his_st_data(stock_code)
subscribe_formula(formula_name, stock_code, period, start_time='', end_time='', count=-1,
    dividend_type=None, extend_param={}, callback=None)
get_formula_result(request_id, start_time='', end_time='', count=-1, timeout_second=-1)
bind_formula(request_id, callback=None)
unsubscribe_formula(request_id)
call_formula(formula_name, stock_code, period, start_time='', end_time='', count=-1,
    dividend_type=None, extend_param={})
reset_market_trading_day_list(market, datas)
reset_market_stock_list(market, datas)
push_custom_data(meta, datas, coverall=False)
gen_factor_index(data_name, formula_name, vars, sector_list, start_time='', end_time='',
    period='1d', dividend_type='none')
create_formula(formula_name, formula_content, formula_params={})
import_formula(formula_name, file_path)
del_formula(formula_name)
get_formulas()
read_feather(file_path)
write_feather(dest_path, param, df)
get_quote_server_config()
get_quote_server_status()
show_quote_server_status()
watch_quote_server_status(callback)
fetch_quote_server_from_config(root_path, key_list)
get_etf_info()
download_etf_info()
download_his_st_data()
get_hk_broker_dict()
get_broker_queue_data(stock_list=[], start_time='', end_time='', count=-1,
    show_broker_name=False)
watch_xtquant_status(callback)
generate_index_data(formula_name, formula_param={}, stock_list=[], period='1d',
    dividend_type='none', start_time='', end_time='', fill_mode='fixed',
    fill_value=float('nan'), result_path=None)
download_tabular_data(stock_list, period, start_time='', end_time='', incrementally=None,
    download_type='validationbypage', source='')
get_trading_contract_list(stockcode, date=None)
get_trading_period(stock_code)
get_kline_trading_period(stock_code)
get_all_trading_periods()
get_all_kline_trading_periods()
get_authorized_market_list()
compute_coming_trading_calendar(market, start_time='', end_time='')
get_tabular_formula(codes, fields, period, start_time, end_time, count=-1, dividend_type='none',
    **kwargs)
bnd_get_conversion_price(stock_code, start_time='', end_time='')
bnd_get_call_info(stock_code, start_time='', end_time='')
bnd_get_put_info(stock_code, start_time='', end_time='')
bnd_get_amount_change(stock_code, start_time='', end_time='')
get_tabular_data(field_list=[], stock_list=[], period='1d', start_time='', end_time='',
    count=-1, dividend_type='none', fill_data=True)
get_order_rank(code, order_time, order_type, order_price, order_volume, order_left_volume)
get_current_connect_sub_info()
get_all_sub_info()
"""

#: ``XtQuantTrader`` methods (``self`` left out).
XTQUANT_TRADER: Final = """
common_op_async_with_seq(seq, callable, callback)
common_op_sync_with_seq(seq, callable)
query_credit_detail(account)
query_credit_detail_async(account, callback)
query_stk_compacts(account)
query_stk_compacts_async(account, callback)
query_credit_subjects(account)
query_credit_subjects_async(account, callback)
query_credit_slo_code(account)
query_credit_slo_code_async(account, callback)
query_credit_assure(account)
query_credit_assure_async(account, callback)
query_new_purchase_limit(account)
query_new_purchase_limit_async(account, callback)
query_ipo_data()
query_ipo_data_async(callback)
fund_transfer(account, transfer_direction, price)
secu_transfer(account, transfer_direction, stock_code, volume, transfer_type)
query_com_fund(account)
query_com_position(account)
smt_query_quoter(account)
smt_negotiate_order_async(account, src_group_id, order_code, date, amount, apply_rate,
    dict_param={})
smt_appointment_order_async(account, order_code, date, amount, apply_rate)
smt_appointment_cancel_async(account, apply_id)
smt_query_order(account)
smt_query_compact(account)
smt_compact_renewal_async(account, cash_compact_id, order_code, defer_days, defer_num,
    apply_rate)
smt_compact_return_async(account, src_group_id, cash_compact_id, order_code, occur_amount)
query_position_statistics(account)
export_data(account, result_path, data_type, start_time=None, end_time=None, user_param={})
query_data(account, result_path, data_type, start_time=None, end_time=None, user_param={})
sync_transaction_from_external(operation, data_type, account, deal_list)
bank_transfer_in(account, bank_no, bank_account, balance, bank_pwd='', fund_pwd='')
bank_transfer_in_async(account, bank_no, bank_account, balance, bank_pwd='', fund_pwd='')
bank_transfer_out(account, bank_no, bank_account, balance, bank_pwd='', fund_pwd='')
bank_transfer_out_async(account, bank_no, bank_account, balance, bank_pwd='', fund_pwd='')
query_bank_info(account)
query_bank_amount(account, bank_no, bank_account, bank_pwd)
query_bank_transfer_stream(account, start_date, end_date, bank_no='', bank_account='')
query_secu_account(account)
ctp_transfer_option_to_future(opt_account_id, ft_account_id, balance)
ctp_transfer_option_to_future_async(opt_account_id, ft_account_id, balance)
ctp_transfer_future_to_option(opt_account_id, ft_account_id, balance)
ctp_transfer_future_to_option_async(opt_account_id, ft_account_id, balance)
get_smart_algo_param(algo_name_list)
smart_algo_order_async(account, stock_code, order_type, order_volume, price_type, price,
    strategy_name, order_remark, algo_name, start_time, end_time, algo_param)
query_smart_algo_task(account)
cancel_smart_algo_task_async(account, task_id)
"""


def _default(node: ast.expr) -> Any:
    if ast.unparse(node) == "float('nan')":
        return math.nan
    return ast.literal_eval(node)


def _signature(line: str, *, method: bool) -> tuple[str, inspect.Signature]:
    fn = ast.parse(f"def {line}: pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    a = fn.args
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)] if method else []
    plain = a.args
    defaults: list[Any] = [P.empty] * (len(plain) - len(a.defaults))
    defaults += [_default(d) for d in a.defaults]
    params += [
        P(x.arg, P.POSITIONAL_OR_KEYWORD, default=d) for x, d in zip(plain, defaults, strict=True)
    ]
    if a.vararg:
        params.append(P(a.vararg.arg, P.VAR_POSITIONAL))
    params += [
        P(x.arg, P.KEYWORD_ONLY, default=P.empty if d is None else _default(d))
        for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
    ]
    if a.kwarg:
        params.append(P(a.kwarg.arg, P.VAR_KEYWORD))
    return fn.name, inspect.Signature(params)


def _entries(table: str) -> list[str]:
    """One signature per entry; an entry continues on indented lines."""
    out: list[str] = []
    for line in table.splitlines():
        if line.startswith(" ") and out:
            out[-1] += " " + line.strip()
        elif line.strip():
            out.append(line.strip())
    return out


def unsupported_functions(table: str, refuse: Callable[[str], NoReturn]) -> dict[str, Any]:
    """Module-level stubs by name: each binds its arguments as Python would, then refuses."""
    out: dict[str, Any] = {}
    for line in _entries(table):
        name, sig = _signature(line, method=False)
        out[name] = _function(name, sig, refuse)
    return out


def unsupported_methods(table: str) -> dict[str, Any]:
    """Method stubs by name: each binds its arguments, then ``self._unsupported(name)``."""
    out: dict[str, Any] = {}
    for line in _entries(table):
        name, sig = _signature(line, method=True)
        out[name] = _method(name, sig)
    return out


def _function(name: str, sig: inspect.Signature, refuse: Callable[[str], NoReturn]) -> Any:
    def stub(*args: Any, **kwargs: Any) -> Any:
        sig.bind(*args, **kwargs)
        refuse(name)

    return _named(stub, name, sig)


def _method(name: str, sig: inspect.Signature) -> Any:
    def stub(self: Any, *args: Any, **kwargs: Any) -> Any:
        sig.bind(self, *args, **kwargs)
        return self._unsupported(name)

    return _named(stub, name, sig)


def _named(fn: Any, name: str, sig: inspect.Signature) -> Any:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = _DOC
    fn.__signature__ = sig
    return fn
