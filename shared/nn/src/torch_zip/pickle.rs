//! The subset of the pickle machine (protocols 2 to 4) that `torch.save` state dicts use.
//! Calls are not executed: `REDUCE` records the callable and its arguments, except for
//! `collections.OrderedDict()`, which becomes a dict so that `SETITEMS` can fill it.

use std::collections::HashMap;

/// A value on the pickle stack.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, from GLOBAL or STACK_GLOBAL.
    Global(String, String),
    /// A REDUCE (or NEWOBJ) that was not executed.
    Call {
        callable: Box<Value>,
        args: Vec<Value>,
    },
    /// BINPERSID: torch's reference to a storage.
    PersistentId(Box<Value>),
    /// A MARK on the stack (never returned).
    Mark,
}

type Fail = (usize, String);

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or((self.pos, format!("truncated: {n} more bytes wanted")))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Fail> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, Fail> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn line(&mut self) -> Result<String, Fail> {
        let rest = &self.data[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or((self.pos, "unterminated line".to_owned()))?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(text)
    }
    fn utf8(&mut self, n: usize) -> Result<String, Fail> {
        let at = self.pos;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| (at, format!("string is not UTF-8: {e}")))
    }
}

/// Runs the pickle in `data` and returns the object STOP leaves; errors carry the byte
/// offset of the failing opcode.
pub fn load(data: &[u8]) -> Result<Value, Fail> {
    let mut r = Reader { data, pos: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    loop {
        let at = r.pos;
        let fail = |message: String| (at, message);
        let op = r.u8()?;
        macro_rules! pop {
            () => {
                stack.pop().ok_or_else(|| fail("stack underflow".into()))?
            };
        }
        let pop_mark = |stack: &mut Vec<Value>| -> Result<Vec<Value>, Fail> {
            let mark = stack
                .iter()
                .rposition(|v| *v == Value::Mark)
                .ok_or_else(|| (at, "no MARK on the stack".to_owned()))?;
            let items = stack.split_off(mark + 1);
            stack.pop();
            Ok(items)
        };
        match op {
            0x80 => {
                let proto = r.u8()?;
                if !(2..=5).contains(&proto) {
                    return Err(fail(format!("pickle protocol {proto} is not supported")));
                }
            }
            0x95 => {
                r.take(8)?; // FRAME: the length of the next frame; frames are not needed
            }
            b'.' => return stack.pop().ok_or_else(|| fail("STOP on an empty stack".into())),
            b'(' => stack.push(Value::Mark),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'K' => stack.push(Value::Int(r.u8()? as i64)),
            b'M' => stack.push(Value::Int(r.u16()? as i64)),
            b'J' => stack.push(Value::Int(r.u32()? as i32 as i64)),
            0x8a => {
                let n = r.u8()? as usize;
                let bytes = r.take(n)?;
                if n > 8 {
                    return Err(fail(format!("LONG1 of {n} bytes does not fit an i64")));
                }
                let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                buf[..n].copy_from_slice(bytes);
                stack.push(Value::Int(i64::from_le_bytes(buf)));
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(r.take(8)?.try_into().unwrap()))),
            b'X' => {
                let n = r.u32()? as usize;
                stack.push(Value::Str(r.utf8(n)?));
            }
            0x8c => {
                let n = r.u8()? as usize;
                stack.push(Value::Str(r.utf8(n)?));
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                let name = pop!();
                let module = pop!();
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err(fail("STACK_GLOBAL on non-strings".into()));
                };
                stack.push(Value::Global(module, name));
            }
            b')' => stack.push(Value::Tuple(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b'}' => stack.push(Value::Dict(Vec::new())),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::List(items));
            }
            b'd' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Dict(pairs(items).map_err(fail)?));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(fail("stack underflow".into()));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'q' => {
                let key = r.u8()? as u32;
                memo.insert(
                    key,
                    stack
                        .last()
                        .cloned()
                        .ok_or_else(|| fail("BINPUT on an empty stack".into()))?,
                );
            }
            b'r' => {
                let key = r.u32()?;
                memo.insert(
                    key,
                    stack
                        .last()
                        .cloned()
                        .ok_or_else(|| fail("LONG_BINPUT on an empty stack".into()))?,
                );
            }
            0x94 => {
                let key = memo.len() as u32;
                memo.insert(
                    key,
                    stack
                        .last()
                        .cloned()
                        .ok_or_else(|| fail("MEMOIZE on an empty stack".into()))?,
                );
            }
            b'h' | b'j' => {
                let key = if op == b'h' { r.u8()? as u32 } else { r.u32()? };
                stack.push(
                    memo.get(&key)
                        .cloned()
                        .ok_or_else(|| fail(format!("memo {key} unset")))?,
                );
            }
            b'Q' => {
                let pid = pop!();
                stack.push(Value::PersistentId(Box::new(pid)));
            }
            b'R' | 0x81 => {
                let args = pop!();
                let callable = pop!();
                let Value::Tuple(args) = args else {
                    return Err(fail("REDUCE arguments are not a tuple".into()));
                };
                let is_ordered_dict =
                    matches!(&callable, Value::Global(m, n) if m == "collections" && n == "OrderedDict");
                stack.push(if is_ordered_dict && args.is_empty() {
                    Value::Dict(Vec::new())
                } else {
                    Value::Call {
                        callable: Box::new(callable),
                        args,
                    }
                });
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let value = pop!();
                    let key = pop!();
                    vec![(key, value)]
                } else {
                    pairs(pop_mark(&mut stack)?).map_err(fail)?
                };
                match stack.last_mut() {
                    Some(Value::Dict(dict)) => dict.extend(items),
                    _ => return Err(fail("SETITEM(S) on a non-dict".into())),
                }
            }
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![pop!()]
                } else {
                    pop_mark(&mut stack)?
                };
                match stack.last_mut() {
                    Some(Value::List(list)) => list.extend(items),
                    _ => return Err(fail("APPEND(S) on a non-list".into())),
                }
            }
            // BUILD sets an object's state (a state dict's `_metadata`): not needed.
            b'b' => {
                pop!();
            }
            other => return Err(fail(format!("opcode 0x{other:02x} is not supported"))),
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_dict_with_setitems() {
        // pickle.dumps(OrderedDict(a=1, b=(2, -3)), protocol=2)
        let data = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03K\x02J\xfd\xff\xff\xff\x86q\x04u.";
        let value = load(data).unwrap();
        assert_eq!(
            value,
            Value::Dict(vec![
                (Value::Str("a".into()), Value::Int(1)),
                (
                    Value::Str("b".into()),
                    Value::Tuple(vec![Value::Int(2), Value::Int(-3)])
                ),
            ])
        );
    }

    #[test]
    fn unknown_opcode_names_its_offset() {
        let err = load(b"\x80\x02\xff.").unwrap_err();
        assert_eq!(err.0, 2);
        assert!(err.1.contains("0xff"), "{}", err.1);
    }
}
